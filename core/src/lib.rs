//! The comms product without HTTP: everything the REST handlers, the legacy
//! routes, the WebSocket and (later) the site's server functions share.
//!
//! # Layout
//!
//! - [`config`]: layered TOML + environment configuration.
//! - [`names`]: validated room and app names.
//! - [`input`]: other client input parsed at the edge: permission, meta.
//! - [`secrets`]: API keys and mailed links' tokens (SHA-256 hashed),
//!   endpoint codes and ids, signing keys.
//! - [`store`]: the SQL boundary (`Store` trait, SQLite and PostgreSQL backends).
//! - [`error`]: `ServiceError`, mapped to the error codes of `docs/protocol.md#errors`.
//! - [`auth`]: API-key check with a small cache.
//! - [`changes`]: the one path by which a change to an app (status, keys,
//!   quotas) reaches every node's caches and sockets.
//! - [`origins`]: per-app allow-lists of browser origins.
//! - [`forwarded`]: the client's address, scheme and host behind trusted proxies.
//! - [`limits`]: REST and WebSocket rate limits.
//! - [`quotas`]: count quotas (rooms, endpoints, apps, live sockets) and
//!   their per-app overrides.
//! - [`broker`]: seq, history and publishing behind a trait (in-process now).
//! - [`message`]: a message from draft to frame and stored row; room events.
//! - [`hub`]: this node's live connections per room and the fan-out to them.
//! - [`live_endpoint`]: an endpoint's changeable state (permission, meta,
//!   expiry, budget) as its open connections share it.
//! - [`capabilities`]: endpoints' lifecycle: live edits, delegation to
//!   children, and moderation (redaction).
//! - [`sent`]: endpoints' `messages_sent`, counted off the hot path.
//! - [`presence`]: presence rooms' members (join, leave, the grace period)
//!   and ephemeral signals.
//! - [`service`]: rooms, endpoints and messages as the API offers them.
//! - [`subscription`]: the WebSocket side: joining a room, publishing through an
//!   endpoint.
//! - [`apps`]: app administration and its audit log (the CLI, the admin area).
//! - [`accounts`]: portal accounts: sign-up, confirming the address, login,
//!   password resets, admins.
//! - [`account_mail`]: the emails with single-use links an account's owner
//!   gets (confirm the address, choose a new password).
//! - [`email`]: sending email through SMTP off the request path, or into
//!   the log without an SMTP server.
//! - [`passwords`]: argon2id hashing and password rules.
//! - [`plan`]: what a config would make a node do (`comms check-config`).
//! - [`portal`]: what a developer may do with their own apps.
//! - [`overview`]: an app's rooms with endpoints, online counts and newest
//!   messages, for the portal's page of the app.
//! - [`demo`]: the public demo app and its bot.
//! - [`metrics`]: Prometheus counters and gauges.
//! - [`webhooks`]: events to apps' backends: the outbox, signing, delivery.
//! - [`usage`]: what each app did per minute, hour and day, counted here
//!   and written to the store.
//! - [`time`]: the API's time format.

#![warn(missing_docs)]

pub mod account_mail;
pub mod accounts;
pub mod apps;
pub mod auth;
pub mod broker;
pub mod capabilities;
pub mod changes;
pub mod config;
pub mod demo;
pub mod email;
pub mod error;
pub mod forwarded;
pub mod hub;
pub mod input;
pub mod limits;
pub mod live_endpoint;
pub mod message;
pub mod metrics;
pub mod names;
pub mod origins;
pub mod overview;
pub mod passwords;
pub mod plan;
pub mod portal;
pub mod presence;
pub mod quotas;
pub mod secrets;
pub mod sent;
pub mod service;
pub mod store;
pub mod subscription;
pub mod time;
pub mod usage;
pub mod webhooks;
