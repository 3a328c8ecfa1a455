//! Sending email: plain-text messages to one recipient each, through the
//! SMTP server of `[email]` (lettre, TLS by rustls), or, without one, into
//! the log in full, so that in development the links in them can be
//! followed from the console. No email is ever dropped without a log line.
//!
//! Sending is off the request path: [`Mailer::send`] queues the message in
//! a bounded channel and returns at once. One task owns the SMTP transport
//! and sends what is queued, one message after another, each within
//! [`SEND_TIMEOUT`], so a dead or slow SMTP server costs that task time,
//! never a portal request. A failed send is logged with its recipient and
//! not retried: the person asks again (signs up again, "send the link
//! again", "forgot your password"). A full queue (the SMTP server far
//! slower than the requests) refuses the new message with an error in the
//! log. The task ends when every [`Mailer`] handle is dropped.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{mpsc, oneshot};

use crate::config::EmailConfig;

/// Messages waiting for the SMTP server before new ones are refused.
const QUEUE: usize = 256;
/// Longest one message may take, connecting included; past it the send is
/// given up and logged.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest one SMTP command may wait for the server's answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A plain-text email to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The text, lines separated by `\n`.
    pub body: String,
}

/// Why the mailer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// `email.from` is not an address.
    #[error("email.from: {0}")]
    Sender(#[from] lettre::address::AddressError),
    /// `email.smtp_url` is not an SMTP URL.
    #[error("email.smtp_url: {0}")]
    Url(#[from] lettre::transport::smtp::Error),
}

enum Command {
    Send(Email),
    Flush(oneshot::Sender<()>),
}

/// Where emails go: the sending task's queue, or the log. Clones share the
/// task.
#[derive(Clone)]
pub struct Mailer {
    queue: Option<mpsc::Sender<Command>>,
}

impl Mailer {
    /// A mailer for `config`: with an SMTP URL, starts the sending task on
    /// the current runtime; without, every email goes to the log.
    ///
    /// # Errors
    ///
    /// A sender or SMTP URL that does not parse (refused earlier by
    /// [`Config::validate`](crate::config::Config::validate)).
    pub fn spawn(config: &EmailConfig) -> Result<Self, MailerError> {
        if config.smtp_url.is_empty() {
            return Ok(Self { queue: None });
        }
        let from: Mailbox = config.from.parse()?;
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)?.timeout(Some(COMMAND_TIMEOUT)).build();
        let (queue, commands) = mpsc::channel(QUEUE);
        tokio::spawn(run(transport, from, commands));
        Ok(Self { queue: Some(queue) })
    }

    /// Queues `email` for the SMTP server, or writes it to the log when
    /// there is none. Never waits.
    pub fn send(&self, email: Email) {
        let Some(queue) = &self.queue else {
            tracing::warn!(
                to = %email.to,
                subject = %email.subject,
                "email not sent: no SMTP server configured (email.smtp_url); it reads:\n\n{}\n",
                email.body
            );
            return;
        };
        if let Err(err) = queue.try_send(Command::Send(email)) {
            let (reason, email) = match err {
                mpsc::error::TrySendError::Full(Command::Send(email)) => ("the queue is full", email),
                mpsc::error::TrySendError::Closed(Command::Send(email)) => ("the mailer has stopped", email),
                _ => return,
            };
            tracing::error!(to = %email.to, subject = %email.subject, "email not sent: {reason}");
        }
    }

    /// Waits until every email queued before this call has been sent or
    /// given up, for `wait` at most (on shutdown).
    pub async fn flush(&self, wait: Duration) {
        let Some(queue) = &self.queue else { return };
        let (done, flushed) = oneshot::channel();
        let flushing = async {
            if queue.send(Command::Flush(done)).await.is_ok() {
                let _ = flushed.await;
            }
        };
        if tokio::time::timeout(wait, flushing).await.is_err() {
            tracing::warn!("emails still queued at shutdown were not sent");
        }
    }
}

/// The sending task: owns the transport until every handle is gone.
async fn run(transport: AsyncSmtpTransport<Tokio1Executor>, from: Mailbox, mut commands: mpsc::Receiver<Command>) {
    while let Some(command) = commands.recv().await {
        match command {
            Command::Send(email) => deliver(&transport, &from, email).await,
            Command::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

async fn deliver(transport: &AsyncSmtpTransport<Tokio1Executor>, from: &Mailbox, email: Email) {
    let message = match message(from, &email) {
        Ok(message) => message,
        Err(err) => {
            tracing::error!(to = %email.to, subject = %email.subject, error = %err, "email not sent");
            return;
        }
    };
    match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
        Ok(Ok(_)) => tracing::info!(to = %email.to, subject = %email.subject, "email sent"),
        Ok(Err(err)) => tracing::error!(to = %email.to, subject = %email.subject, error = %err, "email not sent"),
        Err(_) => tracing::error!(
            to = %email.to,
            subject = %email.subject,
            "email not sent: the SMTP server took longer than {} s",
            SEND_TIMEOUT.as_secs()
        ),
    }
}

/// `email` as a MIME message from `from`.
fn message(from: &Mailbox, email: &Email) -> anyhow::Result<Message> {
    let to: Mailbox = email.to.parse()?;
    Ok(Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.as_str())
        .header(ContentType::TEXT_PLAIN)
        .body(email.body.clone())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_plain_text_from_the_sender() {
        let from: Mailbox = "comms <noreply@example.com>".parse().unwrap();
        let email =
            Email { to: "dev@example.com".into(), subject: "Hello".into(), body: "line one\nline two\n".into() };
        let text = String::from_utf8(message(&from, &email).unwrap().formatted()).unwrap();
        for expected in ["From: comms <noreply@example.com>", "To: dev@example.com", "Subject: Hello", "text/plain"] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        assert!(text.contains("line one\r\nline two"), "{text}");
        let bad = Email { to: "not an address".into(), ..email };
        assert!(message(&from, &bad).is_err());
    }
}
