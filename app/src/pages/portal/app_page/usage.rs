//! The usage section of an app's page: its live connection count (pushed
//! by the server as it changes, see [`live_count`]), its charts, refusals,
//! quotas with a warning near each limit, and the CSV download. It loads
//! on its own, so refreshing the rest of the page neither reloads the
//! charts nor opens another socket.

use comms_protocol::ErrorCode;
use leptos::prelude::*;

use crate::pages::portal::api::app_usage;
use crate::pages::portal::charts::BarChart;
use crate::pages::portal::views::{QuotaRow, UsageView};

#[cfg(feature = "hydrate")]
mod live_count;

/// On the server there is no count to follow: the page shows the one
/// [`app_usage`] gave until the browser opens the socket.
#[cfg(not(feature = "hydrate"))]
mod live_count {
    use leptos::prelude::RwSignal;

    pub(super) fn follow(_app: String, _live: RwSignal<Option<u64>>) {}
}

/// The section, for the app named `app`.
#[component]
pub(super) fn UsageSection(app: String) -> impl IntoView {
    let live = RwSignal::new(None::<u64>);
    let usage = Resource::new(
        {
            let app = app.clone();
            move || app.clone()
        },
        app_usage,
    );
    // In the browser only: the socket closes with the page, or at the
    // first count after this section is gone.
    Effect::new(move |_| live_count::follow(app.clone(), live));
    view! {
        <Suspense fallback=|| view! { <p>"Loading usage…"</p> }>
            {move || {
                usage
                    .get()
                    .map(|result| match result {
                        Ok(Some(usage)) => view! { <UsageFigures usage live /> }.into_any(),
                        Ok(None) => ().into_any(),
                        // Not signed in: the rest of the page says so.
                        Err(err) if err.code == ErrorCode::Forbidden => ().into_any(),
                        Err(err) => view! { <p role="alert" class="error">{err.to_string()}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
}

#[component]
fn UsageFigures(usage: UsageView, live: RwSignal<Option<u64>>) -> impl IntoView {
    let UsageView { connections, charts, refused, quotas, csv_href } = usage;
    view! {
        <section aria-labelledby="usage-heading" class="card">
            <h2 id="usage-heading">"Usage"</h2>
            <p>"Connections now, over every node (live):"</p>
            <p class="figure" id="connections-now" aria-live="polite">{move || live.get().unwrap_or(connections)}</p>
            {charts.into_iter().map(|chart| view! { <BarChart chart /> }).collect_view()}
            <p>
                "Refused in the last 30 days: "
                {format!(
                    "{} over a quota, {} over a rate, {} nested too deep, {} with credentials that no longer work.",
                    refused.quota,
                    refused.rate,
                    refused.depth,
                    refused.credentials,
                )}
            </p>
            <QuotasTable quotas />
            <p>
                <a href=csv_href download="usage.csv">"Download the last 7 days, by hour, as CSV"</a>
                " · The same figures by API: " <a href="/docs/usage"><code>"GET /api/v1/usage"</code></a>
            </p>
        </section>
    }
}

/// Each quota with its use, warning near the limit.
#[component]
fn QuotasTable(quotas: Vec<QuotaRow>) -> impl IntoView {
    view! {
        <table class="quotas">
            <caption>"Quotas"</caption>
            <thead>
                <tr>
                    <th>"quota"</th>
                    <th>"used"</th>
                    <th>"limit"</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>
                {quotas
                    .into_iter()
                    .map(|row| {
                        let limit = row.limit.map_or_else(|| "unlimited".to_owned(), |limit| limit.to_string());
                        let warning = row.nearly_full.then(|| {
                            view! { <span class="nearly-full" role="status">"near the limit"</span> }
                        });
                        view! {
                            <tr>
                                <td><code>{row.quota}</code></td>
                                <td>{row.used}</td>
                                <td>{limit}</td>
                                <td>{warning}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
