//! `GET /v1/events`.

use crate::App;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_core::access::Action;
use cairn_core::events::{
    Event, EventPage, EventQuery, LatestQuery, Subject, check_type_pattern, owner_only,
};
use cairn_core::repositories::readable_events;
use cairn_http::openapi::Refusals;
use cairn_http::{ApiError, MaybeCaller, json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::time::Instant;

/// How long a reconnecting `EventSource` waits, milliseconds.
const RETRY_MS: u64 = 250;
/// Default page size.
const DEFAULT_LIMIT: usize = 100;
/// Most events `last` reads back.
const MAX_LAST: usize = 100;

/// Query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// A cursor (an event's `seq`, or 0): only events after it. A page without it
    /// starts at the oldest event kept, a stream at the head of the log.
    after: Option<String>,
    /// Comma-separated types or prefixes: `package.*,repository.published`.
    types: Option<String>,
    /// One subject's events only, `kind:name` (`repository:release/3.0/el/8`).
    subject: Option<String>,
    /// Page size, 1-1000 (default 100).
    limit: Option<usize>,
    /// Instead of `after`: the newest 1-100 events, oldest first, and the cursor to
    /// follow on from (JSON only; combines with `subject` only).
    last: Option<usize>,
}

/// A page of events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventsPage {
    /// The events, oldest first.
    events: Vec<Event>,
    /// The cursor to pass as `after` next: the last position read.
    next: String,
}

impl From<cairn_core::events::EventPage> for EventsPage {
    fn from(page: cairn_core::events::EventPage) -> Self {
        Self {
            events: page.events,
            next: page.next.to_string(),
        }
    }
}

fn cursor(text: &str, what: &str) -> Result<u64, ApiError> {
    text.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{what} {text:?} is not a cursor (the `seq` of an event, or 0)"
        ))
    })
}

/// The events after a cursor: a JSON page, or with `Accept: text/event-stream` a
/// long-poll in Server-Sent Events form. `last=<n>` instead reads the newest `n`
/// (oldest first) and the cursor to follow them from.
#[utoipa::path(
    get, path = "/v1/events", operation_id = "read_events", tag = "events",
    summary = "Read or follow the event log",
    description = "A JSON page of events after a cursor; with `Accept: text/event-stream` a \
        buffered long-poll in Server-Sent Events form (`id:` is the cursor) that answers as \
        soon as events exist, or a comment after the wait. Repository events are public; \
        other subjects need credentials. docs/events.md.",
    params(
        Params,
        ("Last-Event-ID" = Option<String>, Header,
         description = "The stream's cursor on reconnect; wins over `after`"),
    ),
    responses(
        (status = 200, description = "Events after the cursor",
         content((EventsPage = "application/json"), (String = "text/event-stream"))),
        Refusals,
    ),
    security((), ("basic" = [])),
)]
pub async fn events(
    State(app): State<Arc<App>>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let subject = params
        .subject
        .as_deref()
        .map(Subject::parse)
        .transpose()
        .map_err(ApiError::bad_request)?;
    if caller.is_none() && subject.as_ref().is_some_and(|s| s.kind() != "repository") {
        return Err(ApiError::unauthorized(format!(
            "credentials required to read {} events (only repository events are public)",
            subject.as_ref().map_or("", Subject::kind)
        )));
    }
    // An account's own events (its operations' and webhooks') need the `events`
    // scope; without it a credential reads what any account reads.
    if let (Some(c), Some(s)) = (&caller, &subject)
        && owner_only(s.as_str())
    {
        c.require(Action::Events, "")?;
    }
    // Private repositories' events are for those who may read the repository.
    let reader = caller.clone();
    let readable = |page: EventPage| {
        let (app, reader) = (&app, &reader);
        async move {
            let events = readable_events(
                &app.seed,
                app.repositories.as_ref(),
                reader.as_ref(),
                page.events,
            )
            .await?;
            Ok::<_, ApiError>(EventPage {
                events,
                next: page.next,
            })
        }
    };
    let caller = caller.filter(|c| c.scopes.allows(Action::Events, ""));
    let types: Vec<String> = params
        .types
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    for t in &types {
        check_type_pattern(t).map_err(ApiError::bad_request)?;
    }
    let stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if let Some(last) = params.last {
        if stream || params.after.is_some() || !types.is_empty() || params.limit.is_some() {
            return Err(ApiError::bad_request(
                "last reads the newest events and their cursor as JSON: \
                 it does not combine with after, types, limit or text/event-stream",
            ));
        }
        if !(1..=MAX_LAST).contains(&last) {
            return Err(ApiError::bad_request(format!(
                "last must be between 1 and {MAX_LAST}"
            )));
        }
        let page = LatestQuery {
            subject,
            limit: last,
            reader: caller.map(|c| c.name),
        }
        .read(app.events.as_ref())
        .await?;
        let page = readable(page).await?;
        return Ok(json(200, &EventsPage::from(page)));
    }
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let after = match (last_event_id, params.after.as_deref()) {
        (Some(id), _) if stream => cursor(id, "Last-Event-ID")?,
        (_, Some(after)) => cursor(after, "after")?,
        // A new stream follows what happens from now on; a page starts at the oldest
        // event kept.
        (_, None) if stream => app.events.head().await?,
        (_, None) => 0,
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let mut query = EventQuery {
        after,
        subject,
        types,
        limit,
        reader: caller.map(|c| c.name),
    };
    if !stream {
        let page = readable(query.read(app.events.as_ref()).await?).await?;
        return Ok(json(200, &EventsPage::from(page)));
    }
    let deadline = Instant::now() + app.wait;
    loop {
        let page = readable(query.read(app.events.as_ref()).await?).await?;
        query.after = page.next;
        if !page.events.is_empty() || Instant::now() + app.poll > deadline {
            return Ok(event_stream(&page.events, page.next));
        }
        tokio::time::sleep(app.poll).await;
    }
}

/// A buffered `text/event-stream` body: one SSE event per Cairn event, `id:` its
/// cursor. With no events, a comment and the cursor read up to, so the reconnect
/// does not read the filtered-out events again.
fn event_stream(events: &[Event], next: u64) -> Response {
    let mut body = format!("retry: {RETRY_MS}\n\n");
    for event in events {
        let data = serde_json::to_string(event).unwrap_or_default();
        body.push_str(&format!("id: {}\ndata: {data}\n\n", event.seq));
    }
    if events.is_empty() {
        body.push_str(": no new events\n");
        if next > 0 {
            body.push_str(&format!("id: {next}\n"));
        }
        body.push('\n');
    }
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `OPTIONS /v1/events`: a browser's preflight before a cross-origin read with
/// credentials or `Last-Event-ID` (the repository pages live on another origin
/// than the API on AWS).
#[utoipa::path(
    options, path = "/v1/events", operation_id = "events_preflight", tag = "events",
    summary = "CORS preflight",
    responses((status = 204, description = "Any origin may read with GET")),
)]
pub async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Last-Event-ID, Accept"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

/// Lets pages on any origin read the log. Without credentials a browser reads
/// only public events; `*` never lets a page send a user's stored credentials.
pub async fn any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// The OpenAPI description of every route, as `cairn openapi` writes it to
/// docs/openapi.json (a test keeps the file equal to what the code describes).
const OPENAPI: &str = include_str!("../../../docs/openapi.json");

#[utoipa::path(
    get, path = "/v1/openapi.json", operation_id = "openapi", tag = "events",
    summary = "This API's OpenAPI description",
    description = "The OpenAPI 3.1 document of every route of this API (the same as \
        docs/openapi.json in the sources). Public; any origin may read it.",
    responses((status = 200, description = "The document", content_type = "application/json")),
)]
pub async fn openapi_document() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        OPENAPI,
    )
        .into_response()
}
