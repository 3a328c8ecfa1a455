//! The pages the portal's emails link to: `/portal/confirm?token=…`
//! (confirm the address with the account's password) and
//! `/portal/reset?token=…` (choose a new password); `/portal/reset`
//! without a token asks for such a link. Opening a link changes nothing:
//! the form on its page does, so a mail scanner that fetches the link
//! neither confirms an address nor uses up a reset.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::api::{portal_session, ConfirmEmail, RequestPasswordReset, ResetPassword};
use super::forms::{FormToken, Outcome};
use super::views::SessionView;
use crate::layout::refresh_viewer_after;

/// `/portal/confirm`: the password, then the address is confirmed and the
/// account signed in.
#[component]
pub fn ConfirmPage() -> impl IntoView {
    let confirm = ServerAction::<ConfirmEmail>::new();
    refresh_viewer_after(confirm);
    view! {
        <Title text="Confirm your email address — comms" />
        <h1>"Confirm your email address"</h1>
        <WithFormToken render=move |csrf, token| {
            view! {
                <section aria-labelledby="confirm-heading" class="card">
                    <h2 id="confirm-heading">"Enter your password"</h2>
                    <p>"The password you signed up with confirms that this account is yours."</p>
                    <ActionForm action=confirm>
                        <FormToken csrf />
                        <input type="hidden" name="token" value=token />
                        <label>
                            "Password" <input type="password" name="password" required autocomplete="current-password" />
                        </label>
                        <button type="submit">"Confirm and log in"</button>
                    </ActionForm>
                    <Outcome action=confirm done="Address confirmed, and you are logged in." />
                </section>
            }
                .into_any()
        } />
        <p>
            <a href="/portal">"Back to the portal"</a>
        </p>
    }
}

/// `/portal/reset`: with a link's token, a new password; without, the
/// address to send such a link to.
#[component]
pub fn ResetPage() -> impl IntoView {
    let reset = ServerAction::<ResetPassword>::new();
    refresh_viewer_after(reset);
    let request = ServerAction::<RequestPasswordReset>::new();
    view! {
        <Title text="Choose a new password — comms" />
        <h1>"Choose a new password"</h1>
        <WithFormToken render=move |csrf, token| {
            if token.is_empty() {
                view! {
                    <section aria-labelledby="request-heading" class="card">
                        <h2 id="request-heading">"Forgot your password?"</h2>
                        <ActionForm action=request>
                            <FormToken csrf />
                            <label>"Your email" <input type="email" name="email" required autocomplete="email" /></label>
                            <button type="submit">"Send me a link"</button>
                        </ActionForm>
                        <Outcome
                            action=request
                            done="If this address has an account, a link to choose a new password is on its way. It works for an hour."
                        />
                    </section>
                }
                    .into_any()
            } else {
                view! {
                    <section aria-labelledby="reset-heading" class="card">
                        <h2 id="reset-heading">"New password"</h2>
                        <ActionForm action=reset>
                            <FormToken csrf />
                            <input type="hidden" name="token" value=token />
                            <label>
                                "New password (10 to 128 characters)"
                                <input type="password" name="password" required minlength="10" maxlength="128" autocomplete="new-password" />
                            </label>
                            <button type="submit">"Save and log in"</button>
                        </ActionForm>
                        <Outcome
                            action=reset
                            done="Password changed, and you are logged in. Every other session of the account has ended."
                        />
                    </section>
                }
                    .into_any()
            }
        } />
        <p>
            <a href="/portal">"Back to the portal"</a>
        </p>
    }
}

/// Renders `render(form token, the link's token or "")` once the form
/// token is known.
#[component]
fn WithFormToken<F>(render: F) -> impl IntoView
where
    F: Fn(String, String) -> AnyView + Send + Sync + 'static,
{
    let query = use_query_map();
    let session = Resource::new(|| (), |_| portal_session());
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                session
                    .get()
                    .map(|result| match result {
                        Ok(SessionView { csrf, .. }) => {
                            render(csrf, query.read().get("token").unwrap_or_default())
                        }
                        Err(err) => view! { <p role="alert" class="error">{err.to_string()}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
}
