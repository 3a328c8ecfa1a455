//! Pieces every portal and admin form shares: the hidden form token, the
//! line that reports an action's outcome, and the login and sign-up forms.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use super::api::{LogIn, SignUp};
use super::error::PortalError;

/// The form token, sent back with every form.
#[component]
pub fn FormToken(
    /// The form token.
    csrf: String,
) -> impl IntoView {
    view! { <input type="hidden" name="csrf" value=csrf /> }
}

/// What became of the last submission of `action`: its error as an alert,
/// or `done` (when given) as a status line.
#[component]
pub fn Outcome<S>(
    /// The action whose outcome is shown.
    action: ServerAction<S>,
    /// What to say on success; nothing when absent.
    #[prop(optional, into)]
    done: Option<String>,
) -> impl IntoView
where
    S: ServerFn<Error = PortalError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    move || match action.value().get() {
        Some(Err(err)) => Some(view! { <p role="alert" class="error">{err.to_string()}</p> }.into_any()),
        Some(Ok(_)) => done.clone().map(|done| view! { <p role="status">{done}</p> }.into_any()),
        None => None,
    }
}

/// Email and password, then "Log in".
#[component]
pub fn LogInForm(
    /// The session's form token.
    csrf: String,
    /// The login action, whose completion the page watches.
    action: ServerAction<LogIn>,
) -> impl IntoView {
    view! {
        <section aria-labelledby="log-in-heading" class="card">
            <h2 id="log-in-heading">"Log in"</h2>
            <ActionForm action>
                <FormToken csrf />
                <label>"Email" <input type="email" name="email" required autocomplete="username" /></label>
                <label>
                    "Password" <input type="password" name="password" required autocomplete="current-password" />
                </label>
                <button type="submit">"Log in"</button>
            </ActionForm>
            <Outcome action />
            <p>
                <a href="/portal/reset">"Forgot your password?"</a>
            </p>
        </section>
    }
}

/// Email and a new password, then "Sign up".
#[component]
pub fn SignUpForm(
    /// The session's form token.
    csrf: String,
    /// The sign-up action.
    action: ServerAction<SignUp>,
) -> impl IntoView {
    view! {
        <section aria-labelledby="sign-up-heading" class="card">
            <h2 id="sign-up-heading">"Sign up"</h2>
            <ActionForm action>
                <FormToken csrf />
                <label>"Your email" <input type="email" name="email" required autocomplete="email" /></label>
                <label>
                    "Choose a password (10 to 128 characters)"
                    <input type="password" name="password" required minlength="10" maxlength="128" autocomplete="new-password" />
                </label>
                <button type="submit">"Sign up"</button>
            </ActionForm>
            <Outcome
                action
                done="Check your inbox: we sent a link to confirm the address. You can log in meanwhile, and register apps once it is confirmed."
            />
        </section>
    }
}
