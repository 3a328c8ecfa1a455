//! `/portal`: developers sign up, log in, register apps (which wait for an
//! admin unless `portal.auto_approve`) and open each app's page
//! ([`app_page`]) to get keys and manage rooms, endpoints and webhooks.
//!
//! # Layout
//!
//! - this module: the portal's home page.
//! - [`app_page`]: the page `/portal/apps/{name}`.
//! - [`mailed_links`]: the pages the portal's emails link to (confirm the
//!   address, choose a new password) and asking for a reset link.
//! - [`forms`]: the hidden form token, outcome lines, login and sign-up forms.
//! - [`views`]: what the pages show, as the server functions answer it.
//! - [`charts`]: the usage charts, drawn as SVG.
//! - [`api`]: the server functions of the portal and the admin area, by
//!   what they act on.
//! - [`error`]: [`PortalError`](error::PortalError), what they answer when
//!   they fail, with the HTTP status of its code.
//! - `guards` (server only): the session, the form token (CSRF), who may do
//!   what, and where the request comes from.

pub mod api;
pub mod app_page;
pub mod charts;
pub mod error;
pub mod forms;
#[cfg(feature = "ssr")]
pub mod guards;
pub mod mailed_links;
pub mod views;

use leptos::prelude::*;
use leptos_meta::Title;

use self::api::{my_apps, portal_session, LogIn, LogOut, RegisterApp, ResendConfirmation, SignUp};
use self::forms::{FormToken, LogInForm, Outcome, SignUpForm};
use self::views::{AppRow, SessionView};
use crate::layout::refresh_viewer_after;

/// The portal's home page.
#[component]
pub fn Portal() -> impl IntoView {
    let log_in = ServerAction::<LogIn>::new();
    let log_out = ServerAction::<LogOut>::new();
    let sign_up = ServerAction::<SignUp>::new();
    refresh_viewer_after(log_in);
    refresh_viewer_after(log_out);
    let session = Resource::new(move || (log_in.version().get(), log_out.version().get()), |_| portal_session());
    view! {
        <Title text="Developer portal — comms" />
        <h1>"Developer portal"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                session
                    .get()
                    .map(|result| match result {
                        Ok(SessionView { csrf, email: Some(email), is_admin, email_verified }) => {
                            view! { <Workspace csrf email is_admin email_verified log_out /> }.into_any()
                        }
                        Ok(SessionView { csrf, email: None, .. }) => {
                            view! {
                                <p>
                                    "Request an API key for your app: sign up, register the app, and use the key once it is approved."
                                </p>
                                <div class="cards">
                                    <SignUpForm csrf=csrf.clone() action=sign_up />
                                    <LogInForm csrf action=log_in />
                                </div>
                            }
                                .into_any()
                        }
                        Err(err) => view! { <p role="alert" class="error">{err.to_string()}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
    .into_any()
}

/// A signed-in developer's apps and the form to register another (once
/// the address is confirmed).
#[component]
fn Workspace(
    csrf: String,
    email: String,
    is_admin: bool,
    email_verified: bool,
    log_out: ServerAction<LogOut>,
) -> impl IntoView {
    let register = ServerAction::<RegisterApp>::new();
    let apps = Resource::new(move || register.version().get(), |_| my_apps());
    let log_out_csrf = csrf.clone();
    let register_or_confirm = if email_verified {
        view! { <RegisterForm csrf=csrf.clone() register /> }.into_any()
    } else {
        view! { <ConfirmFirst csrf=csrf.clone() email=email.clone() /> }.into_any()
    };
    // A `div`, not a `p`: a form inside a paragraph ends it in the browser's
    // parser, and the page would no longer hydrate.
    view! {
        <div>
            "Signed in as " <strong>{email}</strong> ". "
            <ActionForm action=log_out attr:class="inline">
                <FormToken csrf=log_out_csrf />
                <button type="submit">"Log out"</button>
            </ActionForm>
            {is_admin.then(|| view! { <a href="/admin">"Admin area"</a> })}
        </div>
        <section aria-labelledby="apps-heading">
            <h2 id="apps-heading">"Your apps"</h2>
            <Suspense fallback=|| view! { <p>"Loading your apps…"</p> }>
                {move || {
                    apps.get()
                        .map(|result| match result {
                            Ok(apps) if apps.is_empty() => view! { <p>"No apps yet: register one below."</p> }.into_any(),
                            Ok(apps) => view! { <AppList apps /> }.into_any(),
                            Err(err) => view! { <p role="alert" class="error">{err.to_string()}</p> }.into_any(),
                        })
                }}
            </Suspense>
        </section>
        {register_or_confirm}
    }
    .into_any()
}

/// What an account with an unconfirmed address sees instead of the
/// registration form.
#[component]
fn ConfirmFirst(csrf: String, email: String) -> impl IntoView {
    let resend = ServerAction::<ResendConfirmation>::new();
    view! {
        <section aria-labelledby="confirm-heading" class="card">
            <h2 id="confirm-heading">"Confirm your email address"</h2>
            <p>
                "We sent a link to " <strong>{email}</strong>
                ". Follow it to confirm the address; then you can register apps."
            </p>
            <ActionForm action=resend>
                <FormToken csrf />
                <button type="submit">"Send the link again"</button>
            </ActionForm>
            <Outcome action=resend done="Sent: the new link works for 24 hours." />
        </section>
    }
}

/// The form that registers an app.
#[component]
fn RegisterForm(csrf: String, register: ServerAction<RegisterApp>) -> impl IntoView {
    view! {
        <section aria-labelledby="register-heading" class="card">
            <h2 id="register-heading">"Register an app"</h2>
            <ActionForm action=register>
                <FormToken csrf />
                <label>
                    "App name (letters, digits, - _ .)"
                    <input name="name" required maxlength="64" pattern="[A-Za-z0-9._\\-]{1,64}" />
                </label>
                <label>"Description" <textarea name="description" maxlength="2000"></textarea></label>
                <label>"Website" <input type="url" name="website" placeholder="https://" /></label>
                <label>"Intended use" <textarea name="intended_use" required maxlength="2000"></textarea></label>
                <button type="submit">"Request a key"</button>
            </ActionForm>
            <Outcome action=register done="Registered: open the app below." />
        </section>
    }
    .into_any()
}

#[component]
fn AppList(apps: Vec<AppRow>) -> impl IntoView {
    view! {
        <table>
            <thead>
                <tr>
                    <th>"app"</th>
                    <th>"status"</th>
                    <th>"keys"</th>
                    <th>"rooms"</th>
                </tr>
            </thead>
            <tbody>
                {apps
                    .into_iter()
                    .map(|app| {
                        view! {
                            <tr>
                                <td>
                                    <a href=format!("/portal/apps/{}", app.name)>{app.name.clone()}</a>
                                </td>
                                <td>{app.status}</td>
                                <td>{app.active_keys}</td>
                                <td>{app.rooms}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
