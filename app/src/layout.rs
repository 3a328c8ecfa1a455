//! The header and footer every page shares, so that a visitor on any page
//! (the portal, a chat, a 404) reaches the others without the address bar.
//!
//! The header links to the admin area only for a signed-in admin: it asks
//! the server once per page load ([`Viewer`]), and again when a page signs
//! someone in or out ([`refresh_viewer_after`]).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::hooks::use_location;

use crate::pages::portal::api::signed_in_admin;
use crate::pages::portal::error::PortalError;

/// The sections of the site the header links to, as (path, label); the
/// home page is the project's name at the start of the header.
const SECTIONS: &[(&str, &str)] = &[("/demo", "Demo"), ("/docs", "Docs"), ("/portal", "Portal")];

/// Whether the visitor is signed in as an admin, as the server last said:
/// provided by [`App`](crate::App) to the header and to the pages that sign
/// in and out.
#[derive(Clone, Copy)]
pub struct Viewer(Resource<Result<bool, PortalError>>);

impl Viewer {
    /// Asks the server now, for this page load.
    pub fn new() -> Self {
        Self(Resource::new(|| (), |()| signed_in_admin()))
    }

    /// Whether to show the admin link: `false` while asking and when asking
    /// failed (the admin area then says what is wrong itself).
    fn is_admin(self) -> Option<bool> {
        self.0.get().map(|answer| answer.unwrap_or(false))
    }
}

impl Default for Viewer {
    fn default() -> Self {
        Self::new()
    }
}

/// Asks the server again who is signed in each time `action` completes:
/// for the actions that log in or out, so the header follows at once.
pub fn refresh_viewer_after<S>(action: ServerAction<S>)
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    let Some(Viewer(answer)) = use_context::<Viewer>() else { return };
    Effect::watch(move || action.version().get(), move |_, _, _| answer.refetch(), false);
}

/// The site's name (the link home) and its sections.
#[component]
pub fn SiteHeader() -> impl IntoView {
    let pathname = use_location().pathname;
    let here = move |section: &'static str| move || pathname.with(|path| in_section(path, section)).then_some("page");
    let viewer = use_context::<Viewer>();
    let admin_link = move || {
        viewer.and_then(Viewer::is_admin).unwrap_or(false).then(|| {
            view! {
                <li>
                    <a href="/admin" aria-current=here("/admin")>"Admin"</a>
                </li>
            }
        })
    };
    view! {
        <header class="site-header">
            <a href="/" class="brand">"comms"</a>
            <nav aria-label="Site">
                <ul>
                    {SECTIONS
                        .iter()
                        .map(|&(path, label)| view! {
                            <li>
                                <a href=path aria-current=here(path)>{label}</a>
                            </li>
                        })
                        .collect_view()}
                    <Transition fallback=|| ()>{admin_link}</Transition>
                </ul>
            </nav>
        </header>
    }
}

/// Whether `path` is `section` or one of its pages.
fn in_section(path: &str, section: &str) -> bool {
    path.strip_prefix(section).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// What the project is, and the documents people look for from any page.
#[component]
pub fn SiteFooter() -> impl IntoView {
    view! {
        <footer class="site-footer">
            <p>"comms: a self-hostable real-time communication server."</p>
            <ul>
                <li><a href="/docs">"Documentation"</a></li>
                <li><a href="/docs/protocol">"Protocol"</a></li>
                <li><a href="/docs/rest">"REST API"</a></li>
                <li><a href="/docs/security">"Security"</a></li>
                <li><a href="/docs/decisions">"Design decisions"</a></li>
            </ul>
        </footer>
    }
}
