//! Projects and pipelines: what a build runs, read from YAML or JSON and checked
//! before it is stored, so that a build never starts from a definition it cannot run.
//!
//! A project has parameters and pipelines; a pipeline is a list of actions; a build runs
//! the pipelines named in `run` (by default all, in order). An action of type
//! `pipeline` runs another pipeline in its place, with parameters of its own, so
//! pipelines can be shared within a project; includes that loop are refused.
//!
//! Parameters reach a `shell` script as environment variables (the shell expands them);
//! in the other actions' fields `${name}` is replaced by the parameter's value.

use super::yaml::Located;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Most parameters of a project (and of one include).
pub const MAX_PARAMETERS: usize = 50;
/// Longest parameter value, bytes, before and after expansion.
pub const MAX_PARAMETER_BYTES: usize = 4096;
/// Most pipelines of a project.
pub const MAX_PIPELINES: usize = 20;
/// Most actions of one pipeline.
pub const MAX_ACTIONS: usize = 50;
/// Most steps one build runs, includes expanded.
pub const MAX_STEPS: usize = 50;
/// Deepest chain of pipeline includes.
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Longest `shell` script, bytes.
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// Most labels an action asks for.
pub const MAX_LABELS: usize = 20;
/// Most builds of one project running at once, when the project does not say.
pub const DEFAULT_CONCURRENCY: u32 = 2;
/// Most builds of one project a project may allow at once.
pub const MAX_CONCURRENCY: u32 = 50;
/// Timeout of an action that does not state one, seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3600;
/// Longest timeout of an action, seconds (a day).
pub const MAX_TIMEOUT_SECS: u64 = 86_400;
/// Longest (and default) timeout of a step on the build-step Lambda, seconds: its
/// 15 minutes, less time to save the workspace and report.
pub const MAX_LAMBDA_TIMEOUT_SECS: u64 = 840;
/// Largest project definition, bytes of JSON.
pub const MAX_PROJECT_JSON: usize = 96 * 1024;

/// The actions Cairn runs.
pub const ACTION_TYPES: [&str; 5] = ["archive", "shell", "publish", "artifact", "pipeline"];

/// A project's definition, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSpec {
    /// Default values of the parameters (a build may override declared ones).
    pub parameters: BTreeMap<String, String>,
    /// The pipelines, in the order written.
    pub pipelines: Vec<Pipeline>,
    /// The pipelines a build runs, in order.
    pub run: Vec<String>,
    /// Most builds of the project running at once; more wait in the queue.
    pub concurrency: u32,
    /// What starts builds besides the API: events and schedules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<super::trigger::TriggerSpec>,
}

/// A named list of actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Its name within the project.
    pub name: String,
    /// What it does, in order.
    pub actions: Vec<Action>,
}

/// One action of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// What it does.
    #[serde(flatten)]
    pub kind: ActionKind,
    /// A name for logs and the build's record (default: the action type): `name:` in
    /// a project file, `title` when stored, since an archive action's `name` is the
    /// archive's.
    #[serde(default, rename = "title", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels a worker must have to take it (`arch=amd64`, `dpkg`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Longest it may run, seconds.
    pub timeout: u64,
    /// What runs it: a worker (default), or the build-step Lambda.
    #[serde(default, skip_serializing_if = "Runner::is_worker")]
    pub runner: Runner,
}

/// What runs a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runner {
    /// A pull-based worker whose labels fit (`cairn worker`).
    #[default]
    Worker,
    /// The build-step Lambda: short built-in actions (archive, publish, artifact)
    /// without labels, at most 14 minutes; never a script (its instances are shared
    /// between projects).
    Lambda,
}

impl Runner {
    /// Whether it is the default.
    pub fn is_worker(&self) -> bool {
        *self == Runner::Worker
    }
}

/// What an action does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum ActionKind {
    /// Runs a script with `sh -e` in the workspace, parameters as environment.
    Shell {
        /// The script.
        script: String,
    },
    /// Freezes a git ref with Cairn's source archive and puts its tree in the
    /// workspace; or (`from`) archives a workspace folder's tree under the name, beside
    /// the trees from origins (Repour's adjust: the steps in between changed it).
    Archive {
        /// The origin's URL (https); empty with `from`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        origin: String,
        /// The ref (tag, branch, commit); empty with `from`.
        #[serde(default, rename = "ref", skip_serializing_if = "String::is_empty")]
        reference: String,
        /// The archive name it is kept under.
        name: String,
        /// Workspace folder the tree goes to; empty with `from`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        into: String,
        /// Workspace folder whose tree is archived, instead of an origin's.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        from: String,
    },
    /// Uploads workspace files into a Cairn repository.
    Publish {
        /// The repository path (`release/2.11/ubuntu/jammy`).
        repository: String,
        /// Workspace paths or globs (`out/*.deb`).
        files: Vec<String>,
    },
    /// Saves workspace files to the artifact store under a name, or restores them.
    Artifact {
        /// `save` or `restore`.
        op: String,
        /// The artifact's name within the build.
        artifact: String,
        /// Workspace paths saved (save only).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        paths: Vec<String>,
    },
    /// Runs another pipeline of the project here.
    Pipeline {
        /// Its name.
        pipeline: String,
        /// Parameters it runs with, over the project's.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        parameters: BTreeMap<String, String>,
    },
}

impl ActionKind {
    /// The action's type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            ActionKind::Shell { .. } => "shell",
            ActionKind::Archive { .. } => "archive",
            ActionKind::Publish { .. } => "publish",
            ActionKind::Artifact { .. } => "artifact",
            ActionKind::Pipeline { .. } => "pipeline",
        }
    }
}

/// A refusal of a definition: what is wrong, where (a path like
/// `pipelines[0].actions[2].action`), and on which line when it came from YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Where in the definition.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// The line of the YAML file, when there was one.
    pub line: Option<usize>,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for SpecError {}

fn err(path: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        path: path.to_string(),
        message: message.into(),
        line: None,
    }
}

/// Whether `name` is a project, pipeline or parameter name: a lowercase letter or
/// digit, then up to 63 of lowercase letters, digits, `.`, `_` and `-`.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
}

/// Whether `name` may name a parameter: it becomes an environment variable, so
/// letters, digits and `_`, not starting with a digit, and not one the shell or the
/// runner sets.
fn valid_parameter(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && !bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && !name.starts_with("CAIRN_")
        && !matches!(
            name,
            "PATH" | "HOME" | "SHELL" | "IFS" | "PWD" | "ENV" | "LD_PRELOAD" | "LD_LIBRARY_PATH"
        )
}

impl ProjectSpec {
    /// Reads a definition from YAML; errors name the line.
    pub fn from_yaml(text: &str) -> Result<Self, SpecError> {
        let doc = super::yaml::load(text).map_err(|message| err("", message))?;
        Self::from_located(&doc)
    }

    /// Reads a definition read from YAML; errors name the line.
    pub fn from_located(doc: &Located) -> Result<Self, SpecError> {
        Self::from_value(&doc.value).map_err(|mut e| {
            e.line = doc.line_of(&e.path);
            e
        })
    }

    /// Reads and checks a definition from JSON (or YAML read into JSON).
    pub fn from_value(value: &Value) -> Result<Self, SpecError> {
        let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
        if size > MAX_PROJECT_JSON {
            return Err(err(
                "",
                format!(
                    "the definition is larger than {} KiB",
                    MAX_PROJECT_JSON / 1024
                ),
            ));
        }
        let top = object(
            value,
            "",
            &[
                "project",
                "parameters",
                "pipelines",
                "run",
                "concurrency",
                "triggers",
            ],
        )?;
        let parameters = string_map(top.get("parameters"), "parameters", true)?;
        let pipelines_value = top
            .get("pipelines")
            .ok_or_else(|| err("pipelines", "a project needs at least one pipeline"))?;
        let list = array(pipelines_value, "pipelines")?;
        if list.is_empty() || list.len() > MAX_PIPELINES {
            return Err(err(
                "pipelines",
                format!("between 1 and {MAX_PIPELINES} pipelines"),
            ));
        }
        let mut pipelines: Vec<Pipeline> = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let path = format!("pipelines[{i}]");
            let pipeline = read_pipeline(item, &path)?;
            if pipelines.iter().any(|p| p.name == pipeline.name) {
                return Err(err(
                    &format!("{path}.name"),
                    format!("a second pipeline named {:?}", pipeline.name),
                ));
            }
            pipelines.push(pipeline);
        }
        let run = match top.get("run") {
            None | Some(Value::Null) => pipelines.iter().map(|p| p.name.clone()).collect(),
            Some(v) => {
                let names = string_list(v, "run")?;
                if names.is_empty() {
                    return Err(err("run", "names at least one pipeline"));
                }
                names
            }
        };
        let concurrency = match top.get("concurrency") {
            None | Some(Value::Null) => DEFAULT_CONCURRENCY,
            Some(v) => {
                let n = integer(v, "concurrency")?;
                u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=MAX_CONCURRENCY).contains(n))
                    .ok_or_else(|| err("concurrency", format!("between 1 and {MAX_CONCURRENCY}")))?
            }
        };
        let triggers = match top.get("triggers") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => {
                let list = array(v, "triggers")?;
                if list.len() > super::trigger::MAX_TRIGGERS {
                    return Err(err(
                        "triggers",
                        format!("at most {} triggers", super::trigger::MAX_TRIGGERS),
                    ));
                }
                list.iter()
                    .enumerate()
                    .map(|(i, t)| {
                        super::trigger::TriggerSpec::read(t, &format!("triggers[{i}]"), |v, at| {
                            string_map(v, at, false)
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let spec = ProjectSpec {
            parameters,
            pipelines,
            run,
            concurrency,
            triggers,
        };
        spec.check()?;
        Ok(spec)
    }

    /// Checks what needs the whole definition: run names exist, includes do not loop,
    /// parameters resolve, and a build stays within [`MAX_STEPS`].
    fn check(&self) -> Result<(), SpecError> {
        for (i, name) in self.run.iter().enumerate() {
            if self.pipeline(name).is_none() {
                return Err(err(
                    &format!("run[{i}]"),
                    format!("no pipeline named {name:?}"),
                ));
            }
        }
        // Every pipeline is checked, also those only other pipelines include.
        for (i, pipeline) in self.pipelines.iter().enumerate() {
            for (j, action) in pipeline.actions.iter().enumerate() {
                if let ActionKind::Pipeline { pipeline: name, .. } = &action.kind
                    && self.pipeline(name).is_none()
                {
                    return Err(err(
                        &format!("pipelines[{i}].actions[{j}].pipeline"),
                        format!("no pipeline named {name:?}"),
                    ));
                }
            }
        }
        self.steps(&BTreeMap::new())?;
        // A trigger's builds can be planned too (its parameters are declared, and
        // stay within bounds with plausible event values).
        for (i, trigger) in self.triggers.iter().enumerate() {
            if let Some(first) = self.triggers[..i]
                .iter()
                .position(|t| t.schedule.is_some() && t.schedule == trigger.schedule)
            {
                return Err(err(
                    &format!("triggers[{i}].schedule"),
                    format!(
                        "the same schedule as triggers[{first}]: one time starts one build \
                         (put the parameters in one trigger, or use two projects)"
                    ),
                ));
            }
            self.steps(&trigger.sample_overrides()).map_err(|e| {
                let path = format!("triggers[{i}].{}", e.path);
                err(&path, e.message)
            })?;
        }
        Ok(())
    }

    fn pipeline(&self, name: &str) -> Option<(usize, &Pipeline)> {
        self.pipelines
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == name)
    }

    /// The steps of a build with `overrides` over the project's parameters: includes
    /// expanded, `${name}` replaced.
    pub fn steps(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Vec<PlannedStep>, SpecError> {
        for (name, value) in overrides {
            if !self.parameters.contains_key(name) {
                return Err(err(
                    &format!("parameters.{name}"),
                    "not a parameter of the project (declare it with a default)",
                ));
            }
            if value.len() > MAX_PARAMETER_BYTES {
                return Err(err(
                    &format!("parameters.{name}"),
                    format!("longer than {MAX_PARAMETER_BYTES} bytes"),
                ));
            }
        }
        let mut parameters = self.parameters.clone();
        parameters.extend(overrides.clone());
        let mut steps = Vec::new();
        let mut chain = Vec::new();
        for name in &self.run {
            self.expand(name, &parameters, &mut chain, &mut steps)?;
        }
        Ok(steps)
    }

    fn expand(
        &self,
        name: &str,
        parameters: &BTreeMap<String, String>,
        chain: &mut Vec<String>,
        steps: &mut Vec<PlannedStep>,
    ) -> Result<(), SpecError> {
        let (index, pipeline) = self
            .pipeline(name)
            .ok_or_else(|| err("run", format!("no pipeline named {name:?}")))?;
        if chain.iter().any(|c| c == name) {
            chain.push(name.to_string());
            return Err(err(
                &format!("pipelines[{index}]"),
                format!(
                    "pipelines include each other in a loop: {}",
                    chain.join(" -> ")
                ),
            ));
        }
        if chain.len() >= MAX_INCLUDE_DEPTH {
            return Err(err(
                &format!("pipelines[{index}]"),
                format!("includes nest deeper than {MAX_INCLUDE_DEPTH}"),
            ));
        }
        let resolved = resolve_parameters(parameters, &format!("pipelines[{index}]"))?;
        chain.push(name.to_string());
        for (j, action) in pipeline.actions.iter().enumerate() {
            let path = format!("pipelines[{index}].actions[{j}]");
            match &action.kind {
                ActionKind::Pipeline {
                    pipeline: inner,
                    parameters: given,
                } => {
                    let mut inner_parameters = parameters.clone();
                    for (key, value) in given {
                        inner_parameters.insert(
                            key.clone(),
                            substitute(value, &resolved, &format!("{path}.parameters.{key}"))?,
                        );
                    }
                    if inner_parameters.len() > MAX_PARAMETERS {
                        return Err(err(
                            &format!("{path}.parameters"),
                            format!("more than {MAX_PARAMETERS} parameters"),
                        ));
                    }
                    self.expand(inner, &inner_parameters, chain, steps)?;
                }
                kind => {
                    if steps.len() >= MAX_STEPS {
                        return Err(err(
                            &path,
                            format!("a build would run more than {MAX_STEPS} steps"),
                        ));
                    }
                    let kind = substitute_kind(kind, &resolved, &path)?;
                    steps.push(PlannedStep {
                        pipeline: name.to_string(),
                        action: Action {
                            kind,
                            ..action.clone()
                        },
                        parameters: resolved.clone(),
                    });
                }
            }
        }
        chain.pop();
        Ok(())
    }
}

/// A step as a build plans it: the action with its parameters resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// The pipeline it comes from.
    pub pipeline: String,
    /// The action, `${name}` replaced.
    pub action: Action,
    /// The parameters it runs with (a script's environment).
    pub parameters: BTreeMap<String, String>,
}

/// The parameters with references to each other (`${name}`) replaced; a loop or
/// an unbounded result is refused.
fn resolve_parameters(
    parameters: &BTreeMap<String, String>,
    path: &str,
) -> Result<BTreeMap<String, String>, SpecError> {
    let mut resolved: BTreeMap<String, String> = BTreeMap::new();
    for name in parameters.keys() {
        let mut visiting = Vec::new();
        resolve_one(name, parameters, &mut resolved, &mut visiting, path)?;
    }
    Ok(resolved)
}

fn resolve_one(
    name: &str,
    parameters: &BTreeMap<String, String>,
    resolved: &mut BTreeMap<String, String>,
    visiting: &mut Vec<String>,
    path: &str,
) -> Result<String, SpecError> {
    if let Some(done) = resolved.get(name) {
        return Ok(done.clone());
    }
    if visiting.iter().any(|v| v == name) {
        visiting.push(name.to_string());
        return Err(err(
            &format!("parameters.{}", visiting[0]),
            format!(
                "parameters refer to each other in a loop: {}",
                visiting.join(" -> ")
            ),
        ));
    }
    let Some(raw) = parameters.get(name) else {
        return Err(err(path, format!("no parameter named {name:?}")));
    };
    visiting.push(name.to_string());
    let mut out = String::new();
    for piece in pieces(raw) {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Reference(reference) => {
                if !parameters.contains_key(reference) {
                    return Err(err(
                        &format!("parameters.{name}"),
                        format!("refers to ${{{reference}}}, which is no parameter"),
                    ));
                }
                let value = resolve_one(reference, parameters, resolved, visiting, path)?;
                out.push_str(&value);
            }
        }
        if out.len() > MAX_PARAMETER_BYTES {
            return Err(err(
                &format!("parameters.{name}"),
                format!("expands to more than {MAX_PARAMETER_BYTES} bytes"),
            ));
        }
    }
    visiting.pop();
    resolved.insert(name.to_string(), out.clone());
    Ok(out)
}

/// A part of a text with `${name}` references.
pub(super) enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// What `${...}` names.
    Reference(&'a str),
}

/// `text` cut into literal text and `${name}` references; `$$` is a literal `$`.
pub(super) fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push(Piece::Text(&rest[..at]));
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push(Piece::Text("$"));
            rest = tail;
        } else if let Some(close) = after.strip_prefix('{').and_then(|a| a.find('}')) {
            out.push(Piece::Reference(&after[1..=close]));
            rest = &after[close + 2..];
        } else {
            out.push(Piece::Text("$"));
            rest = after;
        }
    }
    out.push(Piece::Text(rest));
    out
}

/// `text` with `${name}` replaced by resolved parameters.
fn substitute(
    text: &str,
    parameters: &BTreeMap<String, String>,
    path: &str,
) -> Result<String, SpecError> {
    let mut out = String::new();
    for piece in pieces(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Reference(name) => match parameters.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    return Err(err(
                        path,
                        format!("refers to ${{{name}}}, which is no parameter"),
                    ));
                }
            },
        }
        if out.len() > MAX_PARAMETER_BYTES {
            return Err(err(
                path,
                format!("expands to more than {MAX_PARAMETER_BYTES} bytes"),
            ));
        }
    }
    Ok(out)
}

fn substitute_kind(
    kind: &ActionKind,
    parameters: &BTreeMap<String, String>,
    path: &str,
) -> Result<ActionKind, SpecError> {
    let sub = |field: &str, text: &str| substitute(text, parameters, &format!("{path}.{field}"));
    let list = |field: &str, items: &[String]| {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| substitute(item, parameters, &format!("{path}.{field}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match kind {
        // The shell expands its own environment.
        ActionKind::Shell { script } => ActionKind::Shell {
            script: script.clone(),
        },
        ActionKind::Archive {
            origin,
            reference,
            name,
            into,
            from,
        } => ActionKind::Archive {
            origin: sub("origin", origin)?,
            reference: sub("ref", reference)?,
            name: sub("name", name)?,
            into: sub("into", into)?,
            from: sub("from", from)?,
        },
        ActionKind::Publish { repository, files } => ActionKind::Publish {
            repository: sub("repository", repository)?,
            files: list("files", files)?,
        },
        ActionKind::Artifact {
            op,
            artifact,
            paths,
        } => ActionKind::Artifact {
            op: op.clone(),
            artifact: sub("artifact", artifact)?,
            paths: list("paths", paths)?,
        },
        ActionKind::Pipeline { .. } => kind.clone(),
    })
}

fn read_pipeline(value: &Value, path: &str) -> Result<Pipeline, SpecError> {
    let map = object(value, path, &["name", "actions"])?;
    let name = required_string(map, path, "name")?;
    if !valid_name(&name) {
        return Err(err(
            &format!("{path}.name"),
            "a pipeline name is lowercase letters, digits, '.', '_' and '-' (at most 64)",
        ));
    }
    let actions_path = format!("{path}.actions");
    let actions = array(
        map.get("actions")
            .ok_or_else(|| err(&actions_path, "a pipeline needs actions"))?,
        &actions_path,
    )?;
    if actions.is_empty() || actions.len() > MAX_ACTIONS {
        return Err(err(
            &actions_path,
            format!("between 1 and {MAX_ACTIONS} actions"),
        ));
    }
    let actions = actions
        .iter()
        .enumerate()
        .map(|(i, a)| read_action(a, &format!("{actions_path}[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(Pipeline { name, actions })
}

const COMMON_FIELDS: [&str; 5] = ["action", "name", "labels", "timeout", "runner"];

fn read_action(value: &Value, path: &str) -> Result<Action, SpecError> {
    let Value::Object(map) = value else {
        return Err(err(path, "an action is a map with an `action` key"));
    };
    let type_name = match map.get("action") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(err(&format!("{path}.action"), "is text")),
        None => {
            return Err(err(
                path,
                format!(
                    "an action needs `action:`, one of {}",
                    ACTION_TYPES.join(", ")
                ),
            ));
        }
    };
    let own: &[&str] = match type_name {
        "shell" => &["script"],
        "archive" => &["origin", "ref", "into", "from"],
        "publish" => &["repository", "files"],
        "artifact" => &["save", "restore", "paths"],
        "pipeline" => &["pipeline", "parameters"],
        other => {
            return Err(err(
                &format!("{path}.action"),
                format!(
                    "unknown action {other:?}: one of {}",
                    ACTION_TYPES.join(", ")
                ),
            ));
        }
    };
    // `name` is the archive's name for `archive`; elsewhere the action's display name.
    for key in map.keys() {
        if !COMMON_FIELDS.contains(&key.as_str()) && !own.contains(&key.as_str()) {
            let mut allowed: Vec<&str> = COMMON_FIELDS.to_vec();
            allowed.extend(own);
            return Err(err(
                &format!("{path}.{key}"),
                format!(
                    "unknown field for a {type_name} action: one of {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    let text = |key: &str| required_string(map, path, key);
    let kind = match type_name {
        "shell" => {
            let script = text("script")?;
            if script.len() > MAX_SCRIPT_BYTES {
                return Err(err(
                    &format!("{path}.script"),
                    format!("longer than {} KiB", MAX_SCRIPT_BYTES / 1024),
                ));
            }
            ActionKind::Shell { script }
        }
        "archive" if map.contains_key("from") => {
            for key in ["origin", "ref", "into"] {
                if map.contains_key(key) {
                    return Err(err(
                        &format!("{path}.{key}"),
                        "an archive action takes `from` (a workspace folder) or `origin` and \
                         `ref`, not both",
                    ));
                }
            }
            ActionKind::Archive {
                origin: String::new(),
                reference: String::new(),
                name: text("name")?,
                into: String::new(),
                from: workspace_path(&text("from")?, &format!("{path}.from"))?,
            }
        }
        "archive" => ActionKind::Archive {
            origin: text("origin")?,
            reference: text("ref")?,
            name: text("name")?,
            into: match map.get("into") {
                None | Some(Value::Null) => "src".into(),
                Some(_) => workspace_path(&text("into")?, &format!("{path}.into"))?,
            },
            from: String::new(),
        },
        "publish" => {
            let files_path = format!("{path}.files");
            let files = string_list(
                map.get("files")
                    .ok_or_else(|| err(&files_path, "names the files to publish"))?,
                &files_path,
            )?;
            if files.is_empty() || files.len() > 100 {
                return Err(err(&files_path, "between 1 and 100 paths or globs"));
            }
            for (i, f) in files.iter().enumerate() {
                workspace_path(f, &format!("{files_path}[{i}]"))?;
            }
            ActionKind::Publish {
                repository: text("repository")?,
                files,
            }
        }
        "artifact" => {
            let (op, artifact) = match (map.get("save"), map.get("restore")) {
                (Some(_), None) => ("save", text("save")?),
                (None, Some(_)) => ("restore", text("restore")?),
                _ => {
                    return Err(err(
                        path,
                        "an artifact action has either `save: <name>` or `restore: <name>`",
                    ));
                }
            };
            if !artifact.contains('$') && !super::artifacts::valid_name(&artifact) {
                return Err(err(
                    &format!("{path}.{op}"),
                    "an artifact name is letters, digits, '.', '_', '-' and '+', starting with a \
                     letter or digit, at most 128 bytes",
                ));
            }
            let paths = match map.get("paths") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => string_list(v, &format!("{path}.paths"))?,
            };
            if op == "save" && (paths.is_empty() || paths.len() > 100) {
                return Err(err(
                    &format!("{path}.paths"),
                    "a save names between 1 and 100 workspace paths",
                ));
            }
            if op == "restore" && !paths.is_empty() {
                return Err(err(&format!("{path}.paths"), "only a save names paths"));
            }
            for (i, p) in paths.iter().enumerate() {
                workspace_path(p, &format!("{path}.paths[{i}]"))?;
            }
            ActionKind::Artifact {
                op: op.into(),
                artifact,
                paths,
            }
        }
        _ => {
            let pipeline = text("pipeline")?;
            let parameters =
                string_map(map.get("parameters"), &format!("{path}.parameters"), false)?;
            ActionKind::Pipeline {
                pipeline,
                parameters,
            }
        }
    };
    let name = match (&kind, map.get("name")) {
        (ActionKind::Archive { .. }, _) | (_, None | Some(Value::Null)) => None,
        (_, Some(_)) => {
            let name = text("name")?;
            if name.len() > 100 || name.chars().any(char::is_control) {
                return Err(err(
                    &format!("{path}.name"),
                    "at most 100 characters of text",
                ));
            }
            Some(name)
        }
    };
    let labels = match map.get("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_list(v, &format!("{path}.labels"))?,
    };
    if labels.len() > MAX_LABELS
        || labels
            .iter()
            .any(|l| l.is_empty() || l.len() > 64 || !l.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(err(
            &format!("{path}.labels"),
            format!("at most {MAX_LABELS} labels of up to 64 printable characters"),
        ));
    }
    let runner = match map.get("runner") {
        None | Some(Value::Null) => Runner::Worker,
        Some(Value::String(s)) if s == "worker" => Runner::Worker,
        Some(Value::String(s)) if s == "lambda" => Runner::Lambda,
        Some(_) => {
            return Err(err(
                &format!("{path}.runner"),
                "`worker` (default) or `lambda`",
            ));
        }
    };
    if runner == Runner::Lambda && matches!(kind, ActionKind::Shell { .. }) {
        return Err(err(
            &format!("{path}.runner"),
            "a shell step runs on a worker: the build-step Lambda runs the built-in actions \
             (archive, publish, artifact) only, since its instances are shared between projects",
        ));
    }
    if runner == Runner::Lambda && !labels.is_empty() {
        return Err(err(
            &format!("{path}.labels"),
            "a step on the build-step Lambda asks for no labels (labels choose workers)",
        ));
    }
    let (default, most) = match runner {
        Runner::Worker => (DEFAULT_TIMEOUT_SECS, MAX_TIMEOUT_SECS),
        Runner::Lambda => (MAX_LAMBDA_TIMEOUT_SECS, MAX_LAMBDA_TIMEOUT_SECS),
    };
    let timeout = match map.get("timeout") {
        None | Some(Value::Null) => default,
        Some(v) => {
            let n = integer(v, &format!("{path}.timeout"))?;
            u64::try_from(n)
                .ok()
                .filter(|n| (1..=most).contains(n))
                .ok_or_else(|| {
                    err(
                        &format!("{path}.timeout"),
                        format!("seconds, between 1 and {most}"),
                    )
                })?
        }
    };
    Ok(Action {
        kind,
        name,
        labels,
        timeout,
        runner,
    })
}

/// A relative path inside the workspace (globs allowed): no `..`, not absolute.
fn workspace_path(text: &str, path: &str) -> Result<String, SpecError> {
    let bad = text.is_empty()
        || text.len() > 1024
        || text.starts_with('/')
        || text.chars().any(char::is_control)
        || text.split('/').any(|part| part == "..");
    if bad {
        return Err(err(
            path,
            format!("{text:?} is not a relative path inside the workspace (no '..', not absolute)"),
        ));
    }
    Ok(text.to_string())
}

fn object<'a>(
    value: &'a Value,
    path: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, SpecError> {
    let Value::Object(map) = value else {
        return Err(err(path, "is a map"));
    };
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            return Err(err(
                &at,
                format!("unknown field: one of {}", allowed.join(", ")),
            ));
        }
    }
    Ok(map)
}

fn array<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>, SpecError> {
    value.as_array().ok_or_else(|| err(path, "is a list"))
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn required_string(map: &Map<String, Value>, path: &str, key: &str) -> Result<String, SpecError> {
    let at = format!("{path}.{key}");
    match map.get(key) {
        None | Some(Value::Null) => Err(err(&at, "is required")),
        Some(v) => {
            let text = scalar_text(v).ok_or_else(|| err(&at, "is text"))?;
            if text.trim().is_empty() {
                return Err(err(&at, "is empty"));
            }
            Ok(text)
        }
    }
}

fn string_list(value: &Value, path: &str) -> Result<Vec<String>, SpecError> {
    array(value, path)?
        .iter()
        .enumerate()
        .map(|(i, v)| scalar_text(v).ok_or_else(|| err(&format!("{path}[{i}]"), "is text")))
        .collect()
}

fn integer(value: &Value, path: &str) -> Result<i64, SpecError> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| err(path, "is a whole number"))
}

fn string_map(
    value: Option<&Value>,
    path: &str,
    declared: bool,
) -> Result<BTreeMap<String, String>, SpecError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let Value::Object(map) = value else {
        return Err(err(path, "is a map of names to values"));
    };
    if map.len() > MAX_PARAMETERS {
        return Err(err(path, format!("more than {MAX_PARAMETERS} parameters")));
    }
    let mut out = BTreeMap::new();
    for (name, v) in map {
        let at = format!("{path}.{name}");
        if !valid_parameter(name) {
            return Err(err(
                &at,
                "a parameter name is letters, digits and '_' (an environment variable; not CAIRN_*, PATH, HOME...)",
            ));
        }
        let text = match v {
            Value::Null if declared => String::new(),
            other => scalar_text(other).ok_or_else(|| err(&at, "is text, not a list or map"))?,
        };
        if text.len() > MAX_PARAMETER_BYTES {
            return Err(err(&at, format!("longer than {MAX_PARAMETER_BYTES} bytes")));
        }
        out.insert(name.clone(), text);
    }
    Ok(out)
}
