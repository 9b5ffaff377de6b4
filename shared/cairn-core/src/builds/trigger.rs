//! What starts a build besides `POST /v1/projects/{name}/builds`: an event (a new
//! archive of a name: `archive.created`) or a schedule (a cron expression, UTC).
//!
//! A trigger's `parameters` override the project's for the builds it starts; in an
//! event trigger `${event.<field>}` is the event's field (`${event.tag}`), taken
//! literally (a `$` in it is not expanded again).

use super::cron::Cron;
use super::project::{MAX_PARAMETER_BYTES, Piece, SpecError, pieces};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Most triggers of a project.
pub const MAX_TRIGGERS: usize = 10;
/// The events a trigger may name, and the fields `${event.<field>}` may read.
pub const TRIGGER_EVENTS: [(&str, &[&str]); 1] = [(
    "archive.created",
    &[
        "name",
        "tag",
        "commit",
        "tree",
        "swhid",
        "origin_url",
        "origin_ref",
        "origin_commit",
        "readonly_url",
        "tarball_url",
    ],
)];

/// One trigger of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerSpec {
    /// The event type that starts a build (`archive.created`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The archive name whose events count (subject `archive:<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// A cron expression (five fields, UTC, or `@daily` and the like).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Parameters of the builds it starts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

fn err(path: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        path: path.to_string(),
        message: message.into(),
        line: None,
    }
}

/// Longest schedule expression, bytes (it is part of a table key).
pub const MAX_SCHEDULE_BYTES: usize = 100;

impl TriggerSpec {
    /// The event subject it listens to (`archive:<name>`), for an event trigger.
    pub fn subject(&self) -> Option<String> {
        self.archive.as_ref().map(|a| format!("archive:{a}"))
    }

    /// Whether `event` (type and subject) is one this trigger starts a build for.
    pub fn wants(&self, kind: &str, subject: &str) -> bool {
        self.event.as_deref() == Some(kind) && self.subject().as_deref() == Some(subject)
    }

    /// What tells this trigger from the project's others whatever their order: a
    /// hash of its definition.
    pub fn key(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = serde_json::to_string(self).unwrap_or_default();
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }

    /// The fields `${event.<field>}` may read.
    fn fields(&self) -> &'static [&'static str] {
        TRIGGER_EVENTS
            .iter()
            .find(|(kind, _)| Some(*kind) == self.event.as_deref())
            .map_or(&[], |(_, fields)| *fields)
    }

    /// Reads one trigger at `path`.
    pub(super) fn read(
        value: &Value,
        path: &str,
        parameters: impl Fn(Option<&Value>, &str) -> Result<BTreeMap<String, String>, SpecError>,
    ) -> Result<Self, SpecError> {
        let Value::Object(map) = value else {
            return Err(err(path, "is a map"));
        };
        let allowed = ["event", "archive", "schedule", "parameters"];
        if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(err(
                &format!("{path}.{key}"),
                format!("unknown field: one of {}", allowed.join(", ")),
            ));
        }
        let text = |key: &str| -> Result<Option<String>, SpecError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                // Runs of blanks are one: `0  3 * * *` is `0 3 * * *`.
                Some(Value::String(s)) if !s.trim().is_empty() => {
                    Ok(Some(s.split_whitespace().collect::<Vec<_>>().join(" ")))
                }
                Some(_) => Err(err(&format!("{path}.{key}"), "is non-empty text")),
            }
        };
        let trigger = TriggerSpec {
            event: text("event")?,
            archive: text("archive")?,
            schedule: text("schedule")?,
            parameters: parameters(map.get("parameters"), &format!("{path}.parameters"))?,
        };
        trigger.check(path, map)?;
        Ok(trigger)
    }

    fn check(&self, path: &str, map: &Map<String, Value>) -> Result<(), SpecError> {
        match (&self.event, &self.schedule) {
            (Some(_), Some(_)) => {
                return Err(err(
                    &format!("{path}.schedule"),
                    "a trigger is an event or a schedule, not both",
                ));
            }
            (None, None) => {
                return Err(err(
                    path,
                    "a trigger names an event (event: archive.created, archive: <name>) \
                     or a schedule (schedule: \"0 3 * * *\")",
                ));
            }
            (Some(kind), None) => {
                if !TRIGGER_EVENTS.iter().any(|(k, _)| k == kind) {
                    let known: Vec<&str> = TRIGGER_EVENTS.iter().map(|(k, _)| *k).collect();
                    return Err(err(
                        &format!("{path}.event"),
                        format!(
                            "builds start on {} events only, not {kind:?}",
                            known.join(", ")
                        ),
                    ));
                }
                match &self.archive {
                    None => {
                        return Err(err(
                            &format!("{path}.archive"),
                            "is required: the archive name whose new trees start a build",
                        ));
                    }
                    Some(name) => crate::repositories::check_archive_name(name)
                        .map_err(|e| err(&format!("{path}.archive"), e))?,
                }
            }
            (None, Some(expr)) => {
                if map.contains_key("archive") {
                    return Err(err(
                        &format!("{path}.archive"),
                        "belongs to an event trigger, not a schedule",
                    ));
                }
                if expr.len() > MAX_SCHEDULE_BYTES {
                    return Err(err(
                        &format!("{path}.schedule"),
                        format!("longer than {MAX_SCHEDULE_BYTES} bytes"),
                    ));
                }
                Cron::parse(expr).map_err(|e| err(&format!("{path}.schedule"), e))?;
            }
        }
        for (name, value) in &self.parameters {
            for reference in references(value) {
                let Some(field) = reference.strip_prefix("event.") else {
                    continue; // another parameter: the build resolves it
                };
                if !self.fields().contains(&field) {
                    let at = format!("{path}.parameters.{name}");
                    return Err(match self.event {
                        None => err(&at, "a schedule has no event to read fields from"),
                        Some(ref kind) => err(
                            &at,
                            format!(
                                "{kind} has no field {field:?}: one of {}",
                                self.fields().join(", ")
                            ),
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The build's parameters when `data` (an event's, or none for a schedule)
    /// starts it: `${event.<field>}` replaced, each `$` of the event's text doubled
    /// so that the build takes it literally.
    pub fn overrides(&self, data: Option<&Value>) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        for (name, value) in &self.parameters {
            // One pass: the event's text is never read again for references. Literal
            // text keeps its `$` escaped (`$$`), for the build expands the result.
            let mut text = String::new();
            for piece in pieces(value) {
                match piece {
                    Piece::Text(t) => text.push_str(&t.replace('$', "$$")),
                    Piece::Reference(reference) => match reference.strip_prefix("event.") {
                        Some(field) => {
                            let found = match data.and_then(|d| d.get(field)) {
                                Some(Value::String(s)) => s.clone(),
                                Some(Value::Null) | None => String::new(),
                                Some(other) => other.to_string(),
                            };
                            text.push_str(&found.replace('$', "$$"));
                        }
                        // Another parameter: the build resolves it.
                        None => text.push_str(&format!("${{{reference}}}")),
                    },
                }
            }
            if text.len() > MAX_PARAMETER_BYTES {
                return Err(format!(
                    "parameter {name} would be longer than {MAX_PARAMETER_BYTES} bytes"
                ));
            }
            out.insert(name.clone(), text);
        }
        Ok(out)
    }

    /// The parameters with every `${event.<field>}` standing in for a plausible
    /// value, to check at definition that the builds it starts can be planned.
    pub(super) fn sample_overrides(&self) -> BTreeMap<String, String> {
        let sample: Map<String, Value> = self
            .fields()
            .iter()
            .map(|f| (f.to_string(), Value::String(format!("sample-{f}"))))
            .collect();
        self.overrides(Some(&Value::Object(sample)))
            .unwrap_or_else(|_| self.parameters.clone())
    }
}

/// The `${...}` references of `text` (`$$` is a literal `$`).
fn references(text: &str) -> impl Iterator<Item = &str> {
    pieces(text).into_iter().filter_map(|p| match p {
        Piece::Reference(r) => Some(r),
        Piece::Text(_) => None,
    })
}

/// The id of the build that `key` (an event id, a scheduled time) starts for
/// `project`: the same key gives the same id, so a trigger that fires twice (an
/// event handed out again, a schedule looked at twice) starts one build.
pub fn triggered_build_id(project: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{project}\n{key}").as_bytes());
    format!("bld_{}", &hex::encode(digest)[..24])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<TriggerSpec, SpecError> {
        TriggerSpec::read(&value, "triggers[0]", |v, _| {
            Ok(v.and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    #[test]
    fn an_event_triggers_parameters_read_the_events_fields_literally() {
        let t = read(json!({"event": "archive.created", "archive": "hello",
                            "parameters": {"ref": "${event.tag}", "note": "from ${event.origin_ref} ($$)"}}))
        .expect("valid");
        assert!(t.wants("archive.created", "archive:hello"));
        assert!(!t.wants("archive.created", "archive:hello2"));
        assert!(!t.wants("operation.finished", "archive:hello"));
        let data = json!({"tag": "cairn/hello/3", "origin_ref": "refs/heads/${event.tag}"});
        let o = t.overrides(Some(&data)).expect("fits");
        assert_eq!(o["ref"], "cairn/hello/3");
        // The event's `$` is doubled so that the build does not expand it, and its
        // text is not searched for references again.
        assert_eq!(o["note"], "from refs/heads/$${event.tag} ($$)");
        let escaped = read(json!({"event": "archive.created", "archive": "hello",
                                  "parameters": {"x": "$${event.tag}=${event.tag}"}}))
        .expect("valid");
        let o = escaped
            .overrides(Some(&json!({"tag": "{p}"})))
            .expect("fits");
        assert_eq!(o["x"], "$${event.tag}={p}");
    }

    #[test]
    fn refuses_triggers_that_cannot_fire() {
        for (value, path, says) in [
            (
                json!({"event": "package.stored", "archive": "a"}),
                "triggers[0].event",
                "archive.created",
            ),
            (
                json!({"event": "archive.created"}),
                "triggers[0].archive",
                "required",
            ),
            (
                json!({"event": "archive.created", "archive": "a*"}),
                "triggers[0].archive",
                "invalid name",
            ),
            (
                json!({"schedule": format!("0{} * * * *", ",0".repeat(60))}),
                "triggers[0].schedule",
                "longer than",
            ),
            (
                json!({"schedule": "61 * * * *"}),
                "triggers[0].schedule",
                "minute",
            ),
            (
                json!({"schedule": "@daily", "event": "archive.created", "archive": "a"}),
                "triggers[0].schedule",
                "not both",
            ),
            (
                json!({"schedule": "@daily", "archive": "a"}),
                "triggers[0].archive",
                "event trigger",
            ),
            (
                json!({"schedule": "@daily", "parameters": {"x": "${event.tag}"}}),
                "triggers[0].parameters.x",
                "no event",
            ),
            (
                json!({"event": "archive.created", "archive": "a", "parameters": {"x": "${event.secret}"}}),
                "triggers[0].parameters.x",
                "no field",
            ),
            (json!({"on": "push"}), "triggers[0].on", "unknown field"),
            (json!({}), "triggers[0]", "names an event"),
        ] {
            let e = read(value.clone()).expect_err(&value.to_string());
            assert_eq!(e.path, path, "{value}");
            assert!(e.message.contains(says), "{value}: {}", e.message);
        }
    }

    #[test]
    fn a_key_gives_one_build_id() {
        let a = triggered_build_id("hello", "evt_1");
        assert_eq!(a, triggered_build_id("hello", "evt_1"));
        assert_ne!(a, triggered_build_id("hello", "evt_2"));
        assert_ne!(a, triggered_build_id("hello2", "evt_1"));
        assert_eq!(a.len(), 4 + 24);
    }
}
