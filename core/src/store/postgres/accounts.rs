//! SQL of the portal on PostgreSQL: accounts and the audit log.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::conflict_or;
use crate::store::{AccountRecord, AuditEntry, StoreError};
use crate::time::now_ms;

const ACCOUNT_COLUMNS: &str = "id, email, password_hash, is_admin, created_at";

fn account_from(row: &PgRow) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        is_admin: row.try_get("is_admin")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) async fn create(
    pool: &PgPool,
    email: &str,
    password_hash: &str,
    is_admin: bool,
) -> Result<AccountRecord, StoreError> {
    let row = sqlx::query(&format!(
        "INSERT INTO accounts (email, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4) \
         RETURNING {ACCOUNT_COLUMNS}"
    ))
    .bind(email)
    .bind(password_hash)
    .bind(is_admin)
    .bind(now_ms())
    .fetch_one(pool)
    .await
    .map_err(conflict_or)?;
    account_from(&row)
}

pub(super) async fn by_email(pool: &PgPool, email: &str) -> Result<Option<AccountRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1"))
        .bind(email)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(account_from).transpose()
}

pub(super) async fn by_id(pool: &PgPool, id: i64) -> Result<Option<AccountRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(account_from).transpose()
}

pub(super) async fn record_audit(pool: &PgPool, entry: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, app_name, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.app_name)
        .bind(&entry.detail)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn audit_log(pool: &PgPool, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query("SELECT at, actor, action, app_name, detail FROM audit_log ORDER BY id DESC LIMIT $1")
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(AuditEntry {
                at: row.try_get("at")?,
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                app_name: row.try_get("app_name")?,
                detail: row.try_get("detail")?,
            })
        })
        .collect()
}
