//! A real SMTP receiver on a loopback port, for tests of the emails comms
//! sends: it speaks the part of RFC 5321 any client needs (`EHLO`/`HELO`,
//! `MAIL`, `RCPT`, `DATA` with dot-stuffing, `RSET`, `NOOP`, `QUIT`) over
//! TCP, accepts every message and keeps it for the test to read. No TLS and
//! no login: a test points comms at [`SmtpSink::url`], `smtp://127.0.0.1:PORT`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long [`SmtpSink::mail_to`] waits for a message.
const WAIT: Duration = Duration::from_secs(10);

/// A message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope's sender (`MAIL FROM`).
    pub from: String,
    /// The envelope's recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message as sent (headers, a blank line, the body), CRLF line
    /// endings, dots unstuffed.
    pub data: String,
}

impl ReceivedMail {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let (headers, _) = self.data.split_once("\r\n\r\n")?;
        headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The body as text, its transfer encoding (`7bit` or
    /// `quoted-printable`) undone.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let quoted =
            self.header("Content-Transfer-Encoding").is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        if quoted {
            decode_quoted_printable(body)
        } else {
            body.to_owned()
        }
    }

    /// The first URL in the body whose path starts with `path`.
    pub fn link(&self, path: &str) -> Option<String> {
        self.body()
            .split_whitespace()
            .find(|word| {
                let rest = word.strip_prefix("http://").or_else(|| word.strip_prefix("https://"));
                rest.and_then(|rest| rest.find('/').map(|slash| &rest[slash..])).is_some_and(|p| p.starts_with(path))
            })
            .map(str::to_owned)
    }
}

/// Messages received so far, and a signal for each new one.
#[derive(Default)]
struct Inbox {
    mails: std::sync::Mutex<Vec<ReceivedMail>>,
    arrived: Notify,
}

/// A running SMTP receiver; it stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Listens on a free loopback port.
    ///
    /// # Panics
    ///
    /// No loopback port can be bound.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let inbox = Arc::new(Inbox::default());
        let accepting = Arc::clone(&inbox);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(converse(stream, Arc::clone(&accepting)));
            }
        });
        Self { addr, inbox, task }
    }

    /// `smtp://127.0.0.1:PORT`, for `email.smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.inbox.mails.lock().expect("inbox lock").clone()
    }

    /// The messages received so far for `to`, oldest first.
    pub fn mails_to(&self, to: &str) -> Vec<ReceivedMail> {
        self.received().into_iter().filter(|mail| mail.to.iter().any(|rcpt| rcpt == to)).collect()
    }

    /// The `n`-th message (from 1) for `to`, waiting for it.
    ///
    /// # Panics
    ///
    /// It has not arrived within 10 s.
    pub async fn mail_to(&self, to: &str, n: usize) -> ReceivedMail {
        let waiting = async {
            loop {
                let arrived = self.inbox.arrived.notified();
                if let Some(mail) = self.mails_to(to).into_iter().nth(n - 1) {
                    return mail;
                }
                arrived.await;
            }
        };
        match tokio::time::timeout(WAIT, waiting).await {
            Ok(mail) => mail,
            Err(_) => panic!("mail {n} to {to} did not arrive; received: {:#?}", self.received()),
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One client's session. Errors end it, as a dropped connection would.
async fn converse(stream: TcpStream, inbox: Arc<Inbox>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 testkit SMTP sink\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-testkit\r\n250 8BITMIME\r\n",
            "HELO" => b"250 testkit\r\n",
            "MAIL" => {
                (from, to) = (between_angles(&line), Vec::new());
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(between_angles(&line));
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n").await?;
                let data = read_data(&mut lines).await?;
                let mail = ReceivedMail { from: from.clone(), to: std::mem::take(&mut to), data };
                inbox.mails.lock().expect("inbox lock").push(mail);
                inbox.arrived.notify_waiters();
                b"250 OK\r\n"
            }
            "RSET" => {
                (from, to) = (String::new(), Vec::new());
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 command not implemented\r\n",
        };
        write.write_all(answer).await?;
    }
}

/// The lines of a `DATA` section up to the lone `.`, unstuffed.
async fn read_data(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == ".\r\n" || line == ".\n" {
            return Ok(data);
        }
        data.push_str(line.strip_prefix('.').filter(|rest| rest.starts_with('.')).unwrap_or(&line));
    }
}

/// `a@b` of `MAIL FROM:<a@b> BODY=8BITMIME`.
fn between_angles(line: &str) -> String {
    let start = line.find('<').map_or(0, |at| at + 1);
    let end = line[start..].find('>').map_or(line.len(), |at| start + at);
    line[start..end].to_owned()
}

/// Undoes quoted-printable: soft line breaks and `=XX` escapes.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let mut bytes = Vec::with_capacity(joined.len());
    let mut rest = joined.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = (byte == b'=')
            .then(|| tail.get(..2))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(decoded) => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            None => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_decoded_and_links_found() {
        let mail = ReceivedMail {
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
            data: "Subject: Hi\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
                   open http://127.0.0.1:3000/portal/confirm?token=3Dabc=\r\ndef =3D ok\r\n"
                .into(),
        };
        assert_eq!(mail.header("subject"), Some("Hi"));
        assert_eq!(mail.body(), "open http://127.0.0.1:3000/portal/confirm?token=abcdef = ok\r\n");
        assert_eq!(mail.link("/portal/confirm").as_deref(), Some("http://127.0.0.1:3000/portal/confirm?token=abcdef"));
        assert_eq!(mail.link("/portal/reset"), None);
        assert_eq!(between_angles("MAIL FROM:<a@example.com> BODY=8BITMIME\r\n"), "a@example.com");
    }
}
