//! Integration tests: the real server on port 0 with a temporary SQLite
//! file (or, in `postgres`, a fresh PostgreSQL database), driven over HTTP
//! and WebSocket as `docs/protocol.md` describes.

mod acks;
mod app_changes;
mod auth;
mod capabilities;
mod certs;
mod cli;
mod cluster;
mod concurrency;
mod deploy;
mod depth;
mod docs_samples;
mod drain;
mod endpoints;
mod failed_auth;
mod fuzz;
mod helpers;
mod http_limits;
mod legacy;
mod messages;
mod nginx;
mod ops;
mod origins;
mod outage;
mod portal;
mod portal_email;
mod postgres;
mod presence;
mod proxy;
mod quotas;
mod restart;
mod rooms;
mod site_headers;
mod tls;
mod usage;
mod webhooks;
mod websocket;
