-- Presence rooms (`Room.presence`): their members are tracked and announced
-- with join and leave frames. Chosen at creation; a constant default rewrites
-- no rows, so this is safe to apply while nodes of the previous release serve.
ALTER TABLE rooms ADD COLUMN presence BOOLEAN NOT NULL DEFAULT FALSE;
