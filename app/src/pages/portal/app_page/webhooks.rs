//! The "Webhooks" section of an app's page: the form that registers a
//! webhook (its secret shown once, as the API answers it), each webhook
//! with its recent deliveries, and the buttons that delete a webhook or
//! send a delivery again.

use comms_protocol::webhook::{Delivery, EventType};
use leptos::prelude::*;

use super::{Actions, CopyButton};
use crate::pages::portal::api::CreateWebhook;
use crate::pages::portal::forms::{FormToken, Outcome};
use crate::pages::portal::views::WebhookPanel;

/// The app's webhooks and the form that adds one.
#[component]
pub(super) fn WebhooksSection(
    app: String,
    csrf: String,
    webhooks: Vec<WebhookPanel>,
    actions: Actions,
) -> impl IntoView {
    let cards = if webhooks.is_empty() {
        view! { <p>"No webhooks yet."</p> }.into_any()
    } else {
        webhooks
            .into_iter()
            .map(|panel| view! { <WebhookCard app=app.clone() csrf=csrf.clone() panel actions /> })
            .collect_view()
            .into_any()
    };
    view! {
        <section aria-labelledby="webhooks-heading">
            <h2 id="webhooks-heading">"Webhooks"</h2>
            <p>
                "comms posts the events you choose to your backend as they happen, signed as "
                <a href="https://www.standardwebhooks.com/">"Standard Webhooks"</a>
                " are, and retries for a day until your backend answers 2xx."
            </p>
            <NewWebhookForm app csrf action=actions.create_webhook />
            <Outcome action=actions.delete_webhook done="Webhook deleted." />
            <Outcome action=actions.redeliver done="Sending it again: refresh to see how it went." />
            {cards}
        </section>
    }
    .into_any()
}

/// A URL and a checkbox per event type, then the new secret or the error.
/// `message.created` starts unchecked: it posts every message of every
/// room, which few backends want, so the API sends it only to webhooks that
/// list it.
#[component]
fn NewWebhookForm(app: String, csrf: String, action: ServerAction<CreateWebhook>) -> impl IntoView {
    let boxes = EventType::ALL
        .into_iter()
        .map(|event| {
            view! {
                <label>
                    <input
                        type="checkbox"
                        name="events[]"
                        value=event.as_str()
                        checked=event != EventType::MessageCreated
                    />
                    " " {event.as_str()}
                </label>
            }
        })
        .collect_view();
    view! {
        <section aria-labelledby="new-webhook-heading" class="card">
            <h3 id="new-webhook-heading">"Add a webhook"</h3>
            <ActionForm action>
                <FormToken csrf />
                <input type="hidden" name="app" value=app />
                <label>
                    "Webhook URL" <input type="url" name="url" required maxlength="2048" placeholder="https://example.com/comms-events" />
                </label>
                <fieldset class="events">
                    <legend>"Events"</legend>
                    {boxes}
                </fieldset>
                <button type="submit">"Add webhook"</button>
            </ActionForm>
            <CreatedSecret action />
        </section>
    }
    .into_any()
}

/// The new webhook's signing secret, which the server keeps but never
/// shows again, or why the webhook was not added.
#[component]
fn CreatedSecret(action: ServerAction<CreateWebhook>) -> impl IntoView {
    move || {
        action.value().get().map(|result| match result {
            Ok(created) => view! {
                <div role="status" class="new-key">
                    <p>
                        "Webhook added. Its signing secret will not be shown again: copy it now, and check each delivery's "
                        <code>"webhook-signature"</code> " with it."
                    </p>
                    <label>"Signing secret" <input readonly value=created.secret.clone() class="secret" /></label>
                    <CopyButton text=created.secret label="Copy secret" />
                </div>
            }
            .into_any(),
            Err(err) => view! { <p role="alert" class="error">{err.to_string()}</p> }.into_any(),
        })
    }
}

/// One webhook: where it posts, what, its deliveries, and its delete button.
#[component]
fn WebhookCard(app: String, csrf: String, panel: WebhookPanel, actions: Actions) -> impl IntoView {
    let WebhookPanel { webhook, deliveries } = panel;
    let events = webhook.events.iter().map(|event| event.as_str()).collect::<Vec<_>>().join(", ");
    let label = format!("webhook {}", webhook.url);
    let created = webhook.created_at.clone();
    let (deliveries_app, deliveries_csrf) = (app.clone(), csrf.clone());
    view! {
        <section class="webhook card" aria-label=label>
            <h3><code>{webhook.url}</code></h3>
            <p>
                "Events: " {events} ". Added " <time datetime=created>{webhook.created_at}</time> ". Id "
                <code>{webhook.id.clone()}</code> "."
            </p>
            <Deliveries app=deliveries_app csrf=deliveries_csrf webhook=webhook.id.clone() deliveries actions />
            <ActionForm action=actions.delete_webhook attr:class="inline">
                <FormToken csrf />
                <input type="hidden" name="app" value=app />
                <input type="hidden" name="id" value=webhook.id />
                <button type="submit">"Delete webhook"</button>
            </ActionForm>
        </section>
    }
    .into_any()
}

/// A webhook's recent deliveries, newest first.
#[component]
fn Deliveries(
    app: String,
    csrf: String,
    webhook: String,
    deliveries: Vec<Delivery>,
    actions: Actions,
) -> impl IntoView {
    if deliveries.is_empty() {
        return view! { <p>"No deliveries yet."</p> }.into_any();
    }
    let lines = deliveries
        .into_iter()
        .map(|delivery| {
            view! { <DeliveryLine app=app.clone() csrf=csrf.clone() webhook=webhook.clone() delivery actions /> }
        })
        .collect_view();
    view! {
        <h4>"Recent deliveries"</h4>
        <table class="deliveries" aria-label="Deliveries">
            <thead>
                <tr>
                    <th>"event"</th>
                    <th>"webhook-id"</th>
                    <th>"state"</th>
                    <th>"HTTP status"</th>
                    <th>"attempts"</th>
                    <th>"last error"</th>
                    <th>"next retry"</th>
                    <th>"actions"</th>
                </tr>
            </thead>
            <tbody>{lines}</tbody>
        </table>
    }
    .into_any()
}

/// One delivery and its "Send again" button.
#[component]
fn DeliveryLine(app: String, csrf: String, webhook: String, delivery: Delivery, actions: Actions) -> impl IntoView {
    let status = delivery.last_status.map_or_else(|| "none".to_owned(), |status| status.to_string());
    let next = delivery.next_attempt_at.map(|at| {
        let when = at.clone();
        view! { <time datetime=when>{at}</time> }
    });
    let happened = delivery.created_at.clone();
    view! {
        <tr>
            <td>
                {delivery.event.as_str()} " " <time datetime=happened>{delivery.created_at}</time>
            </td>
            <td><code>{delivery.event_id}</code></td>
            <td>{delivery.state.as_str()}</td>
            <td>{status}</td>
            <td>{delivery.attempts}</td>
            <td class="last-error">{delivery.last_error}</td>
            <td>{next}</td>
            <td>
                <ActionForm action=actions.redeliver attr:class="inline">
                    <FormToken csrf />
                    <input type="hidden" name="app" value=app />
                    <input type="hidden" name="id" value=webhook />
                    <input type="hidden" name="delivery" value=delivery.id.to_string() />
                    <button type="submit">"Send again"</button>
                </ActionForm>
            </td>
        </tr>
    }
    .into_any()
}
