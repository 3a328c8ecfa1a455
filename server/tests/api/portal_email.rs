//! The portal's emails, received by a real SMTP server on a loopback port
//! (`comms_testkit::smtp`): confirming a new account's address, password
//! resets, the answer to a sign-up with a taken address, and, without an
//! SMTP server, the email in the log of the real binary.

use std::process::Stdio;

use tokio::process::Command;

use crate::helpers::{spawn_app, spawn_app_with, token_of, wait_ready, Browser, TestApp, PASSWORD, WAIT};

/// The status and body of a sign-up.
async fn sign_up(browser: &Browser, email: &str, password: &str) -> (reqwest::StatusCode, String) {
    let response = browser.act_raw("/portal/fn/sign_up", &[("email", email), ("password", password)]).await;
    (response.status(), response.text().await.unwrap())
}

/// The answer to asking for a reset link.
async fn ask_reset(browser: &Browser, email: &str) -> Result<serde_json::Value, String> {
    browser.act("/portal/fn/request_password_reset", &[("email", email)]).await
}

/// Sets every stored link of the app to have expired.
async fn expire_links(app: &TestApp) {
    let url = format!("sqlite://{}", app.data_dir.path().join("comms.db").display());
    let pool = tower_sessions_sqlx_store::sqlx::SqlitePool::connect(&url).await.unwrap();
    tower_sessions_sqlx_store::sqlx::query("UPDATE account_tokens SET expires_at = 1").execute(&pool).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn signing_up_mails_a_link_that_confirms_the_address_and_logs_in() {
    let app = spawn_app_with(|config| config.email.from = "comms <noreply@comms.example.com>".into()).await;
    let mut browser = Browser::open(&app).await;
    browser.act("/portal/fn/sign_up", &[("email", "Dev@Example.com"), ("password", PASSWORD)]).await.unwrap();
    let mail = browser.mail("dev@example.com", 1).await;
    assert_eq!(mail.from, "noreply@comms.example.com");
    assert_eq!(mail.header("Subject"), Some("Confirm your email address for comms"));
    assert!(mail.header("Content-Type").is_some_and(|t| t.starts_with("text/plain")), "{mail:?}");
    let link = mail.link("/portal/confirm").expect("a confirmation link");
    let prefix = format!("{}/portal/confirm?token=", app.api().base);
    assert!(link.starts_with(&prefix), "links name the address the server listens on: {link}");
    assert_eq!(token_of(&link).len(), 43, "256 random bits");

    let (status, page) = browser.page(&link).await;
    assert_eq!(status, 200);
    assert!(page.contains("Confirm your email address"), "{page}");
    assert_eq!(browser.refresh().await["email"], serde_json::Value::Null, "opening the link changes nothing");
    let wrong = browser.confirm(&link, "not the password").await.unwrap_err();
    assert!(wrong.contains("wrong password"), "{wrong}");
    browser.confirm(&link, PASSWORD).await.expect("the link still works after a typo");
    let session = browser.refresh().await;
    assert_eq!((&session["email"], &session["email_verified"]), (&"dev@example.com".into(), &true.into()));
    browser.register("game").await.expect("a confirmed account registers apps");

    let mut other = Browser::open(&app).await;
    let used = other.confirm(&link, PASSWORD).await.unwrap_err();
    assert!(used.contains("expired or was already used"), "{used}");
}

#[tokio::test]
async fn links_start_at_the_public_url() {
    let app = spawn_app_with(|config| config.server.public_url = "https://comms.example.com/".into()).await;
    let mut browser = Browser::open(&app).await;
    browser.act("/portal/fn/sign_up", &[("email", "dev@example.com"), ("password", PASSWORD)]).await.unwrap();
    let link = browser.mail("dev@example.com", 1).await.link("/portal/confirm").unwrap();
    assert!(link.starts_with("https://comms.example.com/portal/confirm?token="), "{link}");
    browser.confirm(&link, PASSWORD).await.expect("its token works on this server");
}

#[tokio::test]
async fn a_dead_smtp_server_does_not_hold_up_the_portal() {
    // Accepts connections and never says a word, like a hung server.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", silent.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            connections.push(connection);
        }
    });
    let app = spawn_app_with(|config| config.email.smtp_url = url).await;
    let browser = Browser::open(&app).await;
    // A request that waited on the silent server would take at least the
    // SMTP command timeout (10 s); one that did not takes well under a
    // second, so this bound holds on a busy machine and still catches it.
    let held_up = std::time::Duration::from_secs(8);
    for n in 0..3 {
        let email = format!("dev{n}@example.com");
        let started = std::time::Instant::now();
        browser.act("/portal/fn/sign_up", &[("email", &email), ("password", PASSWORD)]).await.unwrap();
        assert!(started.elapsed() < held_up, "sign-up answered in {:?}", started.elapsed());
        let started = std::time::Instant::now();
        browser.act("/portal/fn/request_password_reset", &[("email", &email)]).await.unwrap();
        assert!(started.elapsed() < held_up, "reset answered in {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn an_unconfirmed_account_logs_in_but_cannot_register_apps() {
    let app = spawn_app().await;
    let mut browser = Browser::open(&app).await;
    browser.act("/portal/fn/sign_up", &[("email", "dev@example.com"), ("password", PASSWORD)]).await.unwrap();
    browser.log_in("dev@example.com", PASSWORD).await.expect("an unconfirmed account may log in");
    assert_eq!(browser.refresh().await["email_verified"], false);
    let refused = browser.register("game").await.unwrap_err();
    assert!(refused.contains("confirm your email address before registering an app"), "{refused}");
    assert_eq!(browser.call("/portal/fn/my_apps", &[]).await.unwrap(), serde_json::json!([]), "nothing made");

    browser.act("/portal/fn/resend_confirmation", &[]).await.expect("a new link");
    let first = browser.mail("dev@example.com", 1).await.link("/portal/confirm").unwrap();
    let second = browser.mail("dev@example.com", 2).await.link("/portal/confirm").unwrap();
    assert_ne!(first, second);
    browser.confirm(&second, PASSWORD).await.unwrap();
    browser.register("game").await.expect("registered once confirmed");
    let earlier = browser.confirm(&first, PASSWORD).await.unwrap_err();
    assert!(earlier.contains("expired or was already used"), "the other links stop working: {earlier}");
    browser.act("/portal/fn/resend_confirmation", &[]).await.unwrap();
    assert_eq!(app.mailbox.mails_to("dev@example.com").len(), 2, "nothing to send once confirmed");
}

#[tokio::test]
async fn signing_up_with_a_taken_address_answers_the_same_and_mails_its_owner() {
    let app = spawn_app().await;
    let mut browser = Browser::open(&app).await;
    let new = sign_up(&browser, "dev@example.com", PASSWORD).await;
    let taken = sign_up(&browser, "dev@example.com", "another password").await;
    assert_eq!(new, taken, "the same answer for a taken address");
    assert_eq!(new.0, 200);
    let unconfirmed = browser.mail("dev@example.com", 2).await;
    assert_eq!(unconfirmed.header("Subject"), Some("Finish setting up your comms account"));
    assert!(unconfirmed.link("/portal/reset").is_some(), "{}", unconfirmed.body());

    let confirm = browser.mail("dev@example.com", 1).await.link("/portal/confirm").unwrap();
    browser.confirm(&confirm, PASSWORD).await.unwrap();
    browser.act("/portal/fn/log_out", &[]).await.unwrap();
    browser.refresh().await;
    assert_eq!(sign_up(&browser, "dev@example.com", "a third password").await, new);
    assert_eq!(sign_up(&browser, "new@example.com", PASSWORD).await, new, "as for a new address");
    let taken = browser.mail("dev@example.com", 3).await;
    assert_eq!(taken.header("Subject"), Some("You already have a comms account"));
    assert!(taken.body().contains(&format!("{}/portal\r\n", app.api().base)), "{}", taken.body());
    assert!(taken.link("/portal/reset").is_some(), "{}", taken.body());

    let wrong = browser.log_in("dev@example.com", "another password").await.unwrap_err();
    assert!(wrong.contains("wrong email or password"), "the account was left alone: {wrong}");
    browser.log_in("dev@example.com", PASSWORD).await.expect("the first password still works");
}

#[tokio::test]
async fn login_answers_the_same_for_an_unknown_email_and_a_wrong_password() {
    let app = spawn_app().await;
    let mut owner = Browser::open(&app).await;
    owner.sign_up_and_log_in("dev@example.com").await;
    let browser = Browser::open(&app).await;
    let mut answers = Vec::new();
    for email in ["nobody@example.com", "dev@example.com"] {
        let response = browser.act_raw("/portal/fn/log_in", &[("email", email), ("password", "a wrong guess!")]).await;
        answers.push((response.status(), response.text().await.unwrap()));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 403);
}

#[tokio::test]
async fn a_reset_link_changes_the_password_once_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let mut signed_in = Browser::open(&app).await;
    signed_in.sign_up_and_log_in("dev@example.com").await;
    let mut browser = Browser::open(&app).await;
    let unknown = ask_reset(&browser, "nobody@example.com").await;
    assert_eq!(unknown, ask_reset(&browser, "dev@example.com").await, "the same for any address");
    let mail = browser.mail("dev@example.com", 2).await;
    assert_eq!(mail.header("Subject"), Some("Choose a new comms password"));
    assert!(app.mailbox.mails_to("nobody@example.com").is_empty(), "nothing for an address without an account");
    let link = mail.link("/portal/reset").expect("a reset link");
    let (status, page) = browser.page(&link).await;
    assert_eq!(status, 200);
    assert!(page.contains("New password"), "{page}");

    let short = browser.reset_password(&link, "short").await.unwrap_err();
    assert!(short.contains("at least 10 characters"), "{short}");
    browser.reset_password(&link, "a brand new password").await.expect("the link sets a new password");
    assert_eq!(browser.refresh().await["email"], "dev@example.com", "and logs in");
    assert_eq!(signed_in.refresh().await["email"], serde_json::Value::Null, "other sessions end");
    let used = browser.reset_password(&link, "yet another password").await.unwrap_err();
    assert!(used.contains("expired or was already used"), "{used}");

    let mut fresh = Browser::open(&app).await;
    assert!(fresh.log_in("dev@example.com", PASSWORD).await.unwrap_err().contains("wrong email or password"));
    fresh.log_in("dev@example.com", "a brand new password").await.expect("the new password works");

    ask_reset(&browser, "dev@example.com").await.unwrap();
    let later = browser.mail("dev@example.com", 3).await.link("/portal/reset").unwrap();
    expire_links(&app).await;
    let expired = browser.reset_password(&later, "a password too late").await.unwrap_err();
    assert!(expired.contains("expired or was already used"), "{expired}");
}

#[tokio::test]
async fn a_reset_through_the_owners_inbox_takes_back_an_address_someone_else_signed_up_with() {
    let app = spawn_app().await;
    let mut squatter = Browser::open(&app).await;
    squatter.act("/portal/fn/sign_up", &[("email", "dev@example.com"), ("password", PASSWORD)]).await.unwrap();
    squatter.log_in("dev@example.com", PASSWORD).await.unwrap();
    let mut owner = Browser::open(&app).await;
    owner
        .act("/portal/fn/sign_up", &[("email", "dev@example.com"), ("password", "the owner's password")])
        .await
        .unwrap();
    let link = owner.mail("dev@example.com", 2).await.link("/portal/reset").unwrap();
    owner.reset_password(&link, "the owner's password").await.unwrap();
    let session = owner.refresh().await;
    assert_eq!((&session["email"], &session["email_verified"]), (&"dev@example.com".into(), &true.into()));
    assert_eq!(squatter.refresh().await["email"], serde_json::Value::Null, "the squatter is out");
    assert!(squatter.log_in("dev@example.com", PASSWORD).await.is_err());
}

#[tokio::test]
async fn without_an_smtp_server_the_email_is_written_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let addr =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let log = dir.path().join("server.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_comms"))
        .args(["serve", "--addr", &addr])
        .current_dir(dir.path())
        .env("COMMS_DATA_DIR", dir.path())
        .env("COMMS_DEMO__ENABLED", "false")
        .env_remove("COMMS_EMAIL__SMTP_URL")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start comms");
    wait_ready(&addr).await;
    let mut browser = Browser::open_at(&format!("http://{addr}"), None).await;
    browser.act("/portal/fn/sign_up", &[("email", "dev@example.com"), ("password", PASSWORD)]).await.unwrap();

    let prefix = format!("http://{addr}/portal/confirm?token=");
    let logged = async {
        loop {
            let text = std::fs::read_to_string(&log).unwrap();
            if let Some(link) = text.split_whitespace().find(|word| word.starts_with(&prefix)) {
                return (text.clone(), link.to_owned());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let (text, link) = tokio::time::timeout(WAIT, logged).await.expect("the link in the log");
    assert!(text.contains("email not sent: no SMTP server configured"), "{text}");
    assert!(text.contains("dev@example.com"), "{text}");
    browser.confirm(&link, PASSWORD).await.expect("the logged link confirms the address");
    assert_eq!(browser.refresh().await["email_verified"], true);
    server.kill().await.unwrap();
}
