//! `/docs` and `/docs/{page}`: the documentation, rendered to HTML at build
//! time from `docs/*.md` and, for the REST reference, from the checked-in
//! OpenAPI document (see `app/build.rs`).
//!
//! The HTML (over 100 KiB) is compiled into the server only, not into the
//! wasm every page of the site loads: the server renders a page's HTML into
//! the document, which hydration keeps as it is, and the browser asks
//! [`docs_page`] for a page only when it renders one itself (after a link
//! within the site).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::pages::not_found::NotFound;

mod menu {
    include!(concat!(env!("OUT_DIR"), "/docs_menu.rs"));
}

#[cfg(feature = "ssr")]
mod html {
    include!(concat!(env!("OUT_DIR"), "/docs_html.rs"));
}

/// The page `/docs` shows.
const FIRST_PAGE: &str = "quickstart";

/// A documentation page, with the menu of all of them.
#[component]
pub fn Docs() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("page").unwrap_or_else(|| FIRST_PAGE.to_owned());
    move || {
        let slug = slug();
        match menu::PAGES.iter().position(|(page, _)| *page == slug) {
            Some(index) => view! {
                <Title text=format!("{} — comms docs", menu::PAGES[index].1) />
                <div class="docs">
                    <Menu current=slug.clone() />
                    <article inner_html=article(index)></article>
                </div>
            }
            .into_any(),
            None => view! { <NotFound /> }.into_any(),
        }
    }
}

/// The HTML of page `index` of the menu, on the server.
#[cfg(feature = "ssr")]
fn article(index: usize) -> Signal<String> {
    Signal::stored(html::HTML[index].to_owned())
}

/// The HTML of page `index` of the menu, in the browser: none while
/// hydrating (the server's stays in place), else fetched from the server.
#[cfg(not(feature = "ssr"))]
fn article(index: usize) -> Signal<String> {
    let html = RwSignal::new(String::new());
    let hydrating = Owner::current_shared_context().is_some_and(|context| context.during_hydration());
    if !hydrating {
        let slug = menu::PAGES[index].0.to_owned();
        leptos::task::spawn_local(async move {
            let page = docs_page(slug).await.unwrap_or_else(|_| {
                "<p role=\"alert\" class=\"error\">This page could not be loaded: reload to try again.</p>".to_owned()
            });
            // The reader may have moved on to another page meanwhile.
            let _ = html.try_set(page);
        });
    }
    html.into()
}

/// The HTML of the documentation page `slug`, for a page the browser renders
/// itself.
#[server(prefix = "/docs/fn", endpoint = "page", input = leptos::server_fn::codec::GetUrl)]
pub async fn docs_page(
    /// The page's slug, as in `/docs/{slug}`.
    slug: String,
) -> Result<String, ServerFnError> {
    let index = menu::PAGES.iter().position(|(page, _)| *page == slug);
    index.map(|index| html::HTML[index].to_owned()).ok_or_else(|| ServerFnError::new(format!("no docs page {slug}")))
}

/// Links to every page; the current one is marked for screen readers too.
#[component]
fn Menu(current: String) -> impl IntoView {
    view! {
        <nav class="docs-menu" aria-label="Documentation">
            <ul>
                {menu::PAGES
                    .iter()
                    .map(|(slug, title)| {
                        let here = *slug == current;
                        view! {
                            <li>
                                <a href=format!("/docs/{slug}") aria-current=here.then_some("page")>
                                    {*title}
                                </a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </nav>
    }
}
