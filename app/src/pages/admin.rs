//! `/admin`: admins (accounts made with `comms admin create`) review apps:
//! approve, reject, suspend and reinstate them, set their count quotas,
//! see the busiest apps with their refused requests by reason, each node's
//! connections and which apps' webhooks are failing, and read the audit
//! log of these actions and of key issuance.

use comms_protocol::Quota;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::layout::refresh_viewer_after;
use crate::pages::portal::api::{admin_overview, portal_session, LogIn, SetAppQuota, SetAppStatus};
use crate::pages::portal::forms::{FormToken, LogInForm, Outcome};
use crate::pages::portal::views::{AdminView, AppRow, AuditRow, BusyAppRow, FailingWebhookRow, NodeRow};

/// The admin area.
#[component]
pub fn Admin() -> impl IntoView {
    let log_in = ServerAction::<LogIn>::new();
    refresh_viewer_after(log_in);
    let session = Resource::new(move || log_in.version().get(), |_| portal_session());
    view! {
        <Title text="Admin — comms" />
        <h1>"Admin"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                session
                    .get()
                    .map(|result| match result {
                        Ok(session) if session.is_admin => view! { <Review csrf=session.csrf /> }.into_any(),
                        Ok(session) if session.email.is_some() => {
                            view! { <p role="alert">"This area is for admins only."</p> }.into_any()
                        }
                        Ok(session) => view! { <LogInForm csrf=session.csrf action=log_in /> }.into_any(),
                        Err(err) => view! { <p role="alert" class="error">{err.to_string()}</p> }.into_any(),
                    })
            }}
        </Suspense>
    }
    .into_any()
}

#[component]
fn Review(csrf: String) -> impl IntoView {
    let set_status = ServerAction::<SetAppStatus>::new();
    let set_quota = ServerAction::<SetAppQuota>::new();
    let overview = Resource::new(move || (set_status.version().get(), set_quota.version().get()), |_| admin_overview());
    view! {
        <Outcome action=set_status done="Done." />
        <Outcome action=set_quota done="Quota set." />
        <Suspense fallback=|| view! { <p>"Loading apps…"</p> }>
            {move || {
                let csrf = csrf.clone();
                overview
                    .get()
                    .map(|result| match result {
                        Ok(AdminView { apps, audit, failing_webhooks, busiest, nodes }) => {
                            view! {
                                <AppsTable apps csrf set_status set_quota />
                                <BusiestAppsTable busiest />
                                <NodesTable nodes />
                                <FailingWebhooksTable webhooks=failing_webhooks />
                                <AuditTable audit />
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

/// The status changes an app in `status` can go through, as (button
/// label, new status).
fn transitions(status: &str) -> &'static [(&'static str, &'static str)] {
    match status {
        "pending" => &[("Approve", "approved"), ("Reject", "rejected")],
        "approved" => &[("Suspend", "suspended")],
        "suspended" => &[("Reinstate", "approved")],
        "rejected" => &[("Approve", "approved")],
        _ => &[],
    }
}

#[component]
fn AppsTable(
    apps: Vec<AppRow>,
    csrf: String,
    set_status: ServerAction<SetAppStatus>,
    set_quota: ServerAction<SetAppQuota>,
) -> impl IntoView {
    view! {
        <section aria-labelledby="apps-heading">
            <h2 id="apps-heading">"Apps"</h2>
            <table>
                <thead>
                    <tr>
                        <th>"app"</th>
                        <th>"owner"</th>
                        <th>"status"</th>
                        <th>"intended use"</th>
                        <th>"keys"</th>
                        <th>"rooms"</th>
                        <th>"quotas"</th>
                        <th>"actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {apps
                        .into_iter()
                        .map(|app| {
                            let buttons = transitions(&app.status)
                                .iter()
                                .map(|&(label, status)| status_button(&csrf, &app.name, label, status, set_status))
                                .collect_view();
                            view! {
                                <tr>
                                    <td>{app.name.clone()}</td>
                                    <td>{app.owner.clone()}</td>
                                    <td>{app.status.clone()}</td>
                                    <td>{app.intended_use.clone()}</td>
                                    <td>{app.active_keys}</td>
                                    <td>{app.rooms}</td>
                                    <td>
                                        {if app.quotas.is_empty() { "defaults".to_owned() } else { app.quotas.join(", ") }}
                                        {quota_form(&csrf, &app.name, set_quota)}
                                    </td>
                                    <td>{buttons}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

/// One button changing `app` to `status`.
fn status_button(
    csrf: &str,
    app: &str,
    label: &'static str,
    status: &'static str,
    action: ServerAction<SetAppStatus>,
) -> impl IntoView {
    let (csrf, name, aria) = (csrf.to_owned(), app.to_owned(), format!("{label} {app}"));
    view! {
        <ActionForm action attr:class="inline">
            <FormToken csrf />
            <input type="hidden" name="app" value=name />
            <input type="hidden" name="status" value=status />
            <button type="submit" aria-label=aria>{label}</button>
        </ActionForm>
    }
    .into_any()
}

/// Sets one quota of `app`: its key, and a number or `default`.
fn quota_form(csrf: &str, app: &str, action: ServerAction<SetAppQuota>) -> impl IntoView {
    let (csrf, name) = (csrf.to_owned(), app.to_owned());
    let (quota_label, value_label, submit_label) =
        (format!("Quota of {app}"), format!("Value of the quota of {app}"), format!("Set quota of {app}"));
    view! {
        <ActionForm action attr:class="inline">
            <FormToken csrf />
            <input type="hidden" name="app" value=name />
            <select name="quota" aria-label=quota_label>
                {Quota::ALL.into_iter().map(|quota| view! { <option value=quota.key()>{quota.key()}</option> }).collect_view()}
            </select>
            <input name="value" size="7" placeholder="default" aria-label=value_label />
            <button type="submit" aria-label=submit_label>"Set"</button>
        </ActionForm>
    }
    .into_any()
}

/// Webhooks whose receivers keep failing: each is retried for up to a day
/// (`webhooks.retry_for_secs`), and its app's developer may not have
/// noticed.
#[component]
fn FailingWebhooksTable(webhooks: Vec<FailingWebhookRow>) -> impl IntoView {
    let body = if webhooks.is_empty() {
        view! { <p>"No webhook is failing."</p> }.into_any()
    } else {
        view! {
            <table>
                <thead>
                    <tr>
                        <th>"app"</th>
                        <th>"webhook"</th>
                        <th>"URL"</th>
                        <th>"failed"</th>
                        <th>"retrying"</th>
                    </tr>
                </thead>
                <tbody>
                    {webhooks
                        .into_iter()
                        .map(|webhook| {
                            view! {
                                <tr>
                                    <td>{webhook.app}</td>
                                    <td><code>{webhook.id}</code></td>
                                    <td>{webhook.url}</td>
                                    <td>{webhook.failed}</td>
                                    <td>{webhook.retrying}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <section aria-labelledby="failing-webhooks-heading">
            <h2 id="failing-webhooks-heading">"Failing webhooks"</h2>
            {body}
        </section>
    }
    .into_any()
}

/// The apps with the most messages in the last 24 hours, with their peak
/// connections and refused requests by reason.
#[component]
fn BusiestAppsTable(busiest: Vec<BusyAppRow>) -> impl IntoView {
    let body = if busiest.is_empty() {
        view! { <p>"No app did anything in the last 24 hours."</p> }.into_any()
    } else {
        view! {
            <div class="table-scroll">
                <table>
                    <thead>
                        <tr>
                            <th>"app"</th>
                            <th>"peak connections"</th>
                            <th>"messages in"</th>
                            <th>"messages out"</th>
                            <th>"refused: quota"</th>
                            <th>"rate"</th>
                            <th>"depth"</th>
                            <th>"credentials"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {busiest
                            .into_iter()
                            .map(|app| {
                                view! {
                                    <tr>
                                        <td>{app.app}</td>
                                        <td>{app.connections_peak}</td>
                                        <td>{app.messages_in}</td>
                                        <td>{app.messages_out}</td>
                                        <td>{app.refused.quota}</td>
                                        <td>{app.refused.rate}</td>
                                        <td>{app.refused.depth}</td>
                                        <td>{app.refused.credentials}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section aria-labelledby="busiest-heading">
            <h2 id="busiest-heading">"Busiest apps, last 24 hours"</h2>
            {body}
        </section>
    }
    .into_any()
}

/// Each node's live connections, as of loading the page.
#[component]
fn NodesTable(nodes: Vec<NodeRow>) -> impl IntoView {
    view! {
        <section aria-labelledby="nodes-heading">
            <h2 id="nodes-heading">"Connections per node"</h2>
            <table>
                <thead>
                    <tr>
                        <th>"node"</th>
                        <th>"connections"</th>
                    </tr>
                </thead>
                <tbody>
                    {nodes
                        .into_iter()
                        .map(|node| view! { <tr><td><code>{node.node}</code></td><td>{node.connections}</td></tr> })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

#[component]
fn AuditTable(audit: Vec<AuditRow>) -> impl IntoView {
    view! {
        <section aria-labelledby="audit-heading">
            <h2 id="audit-heading">"Audit log"</h2>
            <table>
                <thead>
                    <tr>
                        <th>"when"</th>
                        <th>"who"</th>
                        <th>"what"</th>
                        <th>"app"</th>
                        <th>"detail"</th>
                    </tr>
                </thead>
                <tbody>
                    {audit
                        .into_iter()
                        .map(|entry| {
                            let when = entry.at.clone();
                            view! {
                                <tr>
                                    <td>
                                        <time datetime=when>{entry.at}</time>
                                    </td>
                                    <td>{entry.actor}</td>
                                    <td>{entry.action}</td>
                                    <td>{entry.app}</td>
                                    <td>{entry.detail}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}
