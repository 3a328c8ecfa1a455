-- The nonce a message was published under (an endpoint's WebSocket nonce or
-- an app's Idempotency-Key, as the broker keys it), written in the same
-- transaction as the message: after a crash the single-node broker reloads
-- the nonces of the window with the room, so a resend of a message that
-- reached history is answered with its first ack instead of published again.
ALTER TABLE messages ADD COLUMN nonce TEXT;
