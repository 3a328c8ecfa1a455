//! Setting up rooms and endpoints through the REST API.

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// A REST client for one app.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    /// A client of the server at `base` (`http://host:port`) with `key`.
    pub fn new(base: String, key: String) -> Self {
        Self { client: reqwest::Client::new(), base, key }
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response =
            self.client.post(format!("{}{path}", self.base)).header("X-API-Key", &self.key).json(&body).send().await?;
        if !response.status().is_success() {
            bail!("POST {path}: {} {}", response.status(), response.text().await.unwrap_or_default());
        }
        Ok(response.json().await?)
    }

    /// Creates a room.
    ///
    /// # Errors
    ///
    /// Any HTTP failure.
    pub async fn create_room(&self, name: &str) -> anyhow::Result<()> {
        self.post("/api/v1/rooms", json!({ "name": name })).await.map(drop)
    }

    /// Creates a presence room (members tracked, join and leave frames).
    ///
    /// # Errors
    ///
    /// Any HTTP failure.
    pub async fn create_presence_room(&self, name: &str) -> anyhow::Result<()> {
        self.post("/api/v1/rooms", json!({ "name": name, "presence": true })).await.map(drop)
    }

    /// Creates an endpoint; returns its `ws_url`.
    ///
    /// # Errors
    ///
    /// Any HTTP failure.
    pub async fn create_endpoint(&self, room: &str, permission: &str) -> anyhow::Result<String> {
        let endpoint =
            self.post(&format!("/api/v1/rooms/{room}/endpoints"), json!({ "permission": permission })).await?;
        endpoint["ws_url"].as_str().map(str::to_owned).context("no ws_url")
    }

    /// Registers a webhook posting `events` to `url`.
    ///
    /// # Errors
    ///
    /// Any HTTP failure.
    pub async fn create_webhook(&self, url: &str, events: &[&str]) -> anyhow::Result<()> {
        self.post("/api/v1/webhooks", json!({ "url": url, "events": events })).await.map(drop)
    }
}
