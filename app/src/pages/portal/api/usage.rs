//! A developer's app's usage: its charts, where it stands against its
//! quotas and a CSV of its last week. The figures are those of
//! `GET /api/v1/usage` ([`comms_core::usage`]); the live connection count
//! comes on a WebSocket of the server's own (`/portal/live/{app}`).

use leptos::prelude::*;

use crate::pages::portal::error::PortalError;
#[cfg(feature = "ssr")]
use crate::pages::portal::guards;
use crate::pages::portal::views::UsageView;

/// One of the developer's apps' usage: connections now, the charts of its
/// page, its refusals over 30 days, its quotas, and the CSV; `None` while
/// the app is not approved (it has no usage).
#[server(prefix = "/portal/fn", endpoint = "app_usage")]
pub async fn app_usage(
    /// The app's name.
    app: String,
) -> Result<Option<UsageView>, PortalError> {
    use comms_core::store::UsageCounts;
    use comms_core::time::now_ms;
    use comms_core::usage::UsageWindow;
    use comms_protocol::usage::Granularity;

    use crate::pages::portal::views::{Bar, Chart, QuotaRow};

    let owner = guards::account(None).await?;
    let context = guards::context()?;
    let app = context.portal.app_of(&owner, &app).await?;
    if app.status != comms_core::store::AppStatus::Approved {
        return Ok(None);
    }
    let usage = context.service.usage();
    let now = now_ms();
    let day_by_hour = usage.every_period(app.id, UsageWindow::last(24, Granularity::Hour, now)).await?;
    let week_by_hour = usage.every_period(app.id, UsageWindow::last(7 * 24, Granularity::Hour, now)).await?;
    let month_by_day = usage.every_period(app.id, UsageWindow::last(30, Granularity::Day, now)).await?;
    let chart = |title: &str, periods: &[(i64, UsageCounts)], by: Granularity, value: fn(&UsageCounts) -> u64| {
        let bars = periods.iter().map(|(at, counts)| Bar { label: period_label(*at, by), value: value(counts) });
        Chart { title: title.to_owned(), bars: bars.collect() }
    };
    let messages = |counts: &UsageCounts| counts.messages_in + counts.messages_out;
    let charts = vec![
        chart("Connections, peak per hour, last 24 hours (UTC)", &day_by_hour, Granularity::Hour, |counts| {
            counts.connections_peak
        }),
        chart("Messages in and out per hour, last 7 days (UTC)", &week_by_hour, Granularity::Hour, messages),
        chart("Messages in and out per day, last 30 days (UTC)", &month_by_day, Granularity::Day, messages),
    ];
    let mut month = UsageCounts::default();
    for (_, counts) in &month_by_day {
        month.add(counts);
    }
    let standing = context.service.standing(&app).await?;
    Ok(Some(UsageView {
        connections: standing.connections,
        charts,
        refused: month.refused(),
        quotas: standing.quotas.into_iter().map(QuotaRow::from).collect(),
        csv_href: csv_href(&week_by_hour),
    }))
}

/// A bar's label: the day (`12-05`) of a daily period, the hour (`14:00`)
/// of a shorter one.
#[cfg(feature = "ssr")]
fn period_label(at_ms: i64, granularity: comms_protocol::usage::Granularity) -> String {
    let at = comms_core::time::format_ms(at_ms);
    match granularity {
        comms_protocol::usage::Granularity::Day => at[5..10].to_owned(),
        _ => at[11..16].to_owned(),
    }
}

/// The periods with any activity as CSV (one header row, then one row per
/// period), in a `data:` URL a link downloads.
#[cfg(feature = "ssr")]
fn csv_href(periods: &[(i64, comms_core::store::UsageCounts)]) -> String {
    let mut csv = String::from(
        "at,connections_peak,messages_in,messages_out,bytes_in,bytes_out,signals,webhook_deliveries,refused_quota,\
         refused_rate,refused_depth,refused_credentials\n",
    );
    for (at, counts) in periods.iter().filter(|(_, counts)| !counts.is_empty()) {
        let c = counts;
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            comms_core::time::format_ms(*at),
            c.connections_peak,
            c.messages_in,
            c.messages_out,
            c.bytes_in,
            c.bytes_out,
            c.signals,
            c.webhook_deliveries,
            c.refused_quota,
            c.refused_rate,
            c.refused_depth,
            c.refused_credentials
        ));
    }
    let encoded = percent_encoding::utf8_percent_encode(&csv, percent_encoding::NON_ALPHANUMERIC);
    format!("data:text/csv;charset=utf-8,{encoded}")
}
