//! The form token of a visitor who is not signed in, kept in a cookie the
//! server signs (HMAC-SHA256) rather than in a session, so that visiting
//! the portal or the admin area, or failing to log in, stores nothing on
//! the server (SPEC: no server-side state for visitors).
//!
//! Every request of the site passes through [`attach`]: the token of a
//! cookie whose signature checks is handed to the portal as a
//! [`VisitorFormToken`] in the request's extensions; a missing or forged
//! cookie is replaced by a new token, set on the response (HttpOnly,
//! `SameSite=Lax`, `Secure` like the session cookie). Another site cannot
//! read the cookie, so it cannot fill in the token a form must send back;
//! and without the server's key nobody can plant a cookie of their own
//! (from a sibling subdomain, or over plain HTTP) with a token they know.
//!
//! The key is generated once and kept in the database (`server_secrets`),
//! so every node of a cluster accepts the cookies the others set.

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use comms_app::pages::portal::guards::VisitorFormToken;
use comms_core::secrets;
use comms_core::store::Store;
use cookie::{Cookie, CookieJar, Key, SameSite};

use crate::state::AppState;

/// Name of the cookie holding a visitor's signed form token.
pub const FORM_COOKIE: &str = "comms_form";
/// Name of the signing key in the database's `server_secrets`.
const KEY_NAME: &str = "form_cookie_key";

/// Reads and makes signed form-token cookies.
#[derive(Clone)]
pub struct FormCookies {
    key: Key,
    secure: bool,
}

impl FormCookies {
    /// Cookies signed with the key in `store` (made now if there is none
    /// yet), `Secure` when `secure`.
    ///
    /// # Errors
    ///
    /// The store fails, or holds a key that is not one (changed by hand).
    pub async fn load(store: &dyn Store, secure: bool) -> anyhow::Result<Self> {
        let stored = store.server_secret(KEY_NAME, &secrets::signing_key()).await?;
        let bytes = secrets::signing_key_bytes(&stored).context("the stored form cookie key is not base64")?;
        let key = Key::try_from(bytes.as_slice()).context("the stored form cookie key is too short")?;
        Ok(Self { key, secure })
    }

    /// The token of the request's form cookie, if its signature checks.
    fn token(&self, headers: &HeaderMap) -> Option<String> {
        let mut jar = CookieJar::new();
        let texts = headers.get_all(COOKIE).into_iter().filter_map(|value| value.to_str().ok());
        for cookie in texts.flat_map(|text| Cookie::split_parse(text.to_owned()).flatten()) {
            if cookie.name() == FORM_COOKIE {
                jar.add_original(cookie);
            }
        }
        jar.signed(&self.key).get(FORM_COOKIE).map(|cookie| cookie.value().to_owned())
    }

    /// The `Set-Cookie` value carrying `token`, signed.
    fn set_cookie(&self, token: String) -> Option<HeaderValue> {
        let mut jar = CookieJar::new();
        let cookie =
            Cookie::build((FORM_COOKIE, token)).path("/").http_only(true).same_site(SameSite::Lax).secure(self.secure);
        jar.signed_mut(&self.key).add(cookie);
        HeaderValue::from_str(&jar.get(FORM_COOKIE)?.to_string()).ok()
    }
}

/// Hands the portal the visitor's form token, setting a new signed cookie
/// when the request has no valid one.
pub async fn attach(State(state): State<AppState>, mut request: Request<Body>, next: Next) -> Response {
    let cookies = &state.form_cookies;
    let (token, set_cookie) = match cookies.token(request.headers()) {
        Some(token) => (token, None),
        None => {
            let token = secrets::form_token();
            let header = cookies.set_cookie(token.clone());
            (token, header)
        }
    };
    request.extensions_mut().insert(VisitorFormToken(token));
    let mut response = next.run(request).await;
    if let Some(header) = set_cookie {
        response.headers_mut().append(SET_COOKIE, header);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies() -> FormCookies {
        FormCookies { key: Key::generate(), secure: false }
    }

    fn request_with(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        headers
    }

    #[test]
    fn only_a_cookie_signed_with_the_key_gives_its_token() {
        let cookies = cookies();
        let set = cookies.set_cookie("the-token".into()).unwrap();
        let set = set.to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"), "{set}");
        let pair = set.split(';').next().unwrap();
        assert_eq!(cookies.token(&request_with(&format!("other=1; {pair}"))).as_deref(), Some("the-token"));

        assert_eq!(cookies.token(&request_with("comms_form=the-token")), None, "unsigned");
        let forged = pair.replace("the-token", "my-token");
        assert_eq!(cookies.token(&request_with(&forged)), None, "signature of another value");
        assert_eq!(FormCookies::token(&self::cookies(), &request_with(pair)), None, "another server's key");
    }
}
