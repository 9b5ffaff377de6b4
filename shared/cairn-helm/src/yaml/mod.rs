//! YAML as Helm 3 reads and writes it. Helm goes through `sigs.k8s.io/yaml` (go-yaml v2
//! plus a JSON round trip), so values here are `serde_json::Value`s and the rules are
//! go-yaml v2's, not a generic YAML 1.2 library's.

pub(crate) mod emit;
pub(crate) mod go;
pub(crate) mod load;

pub(crate) use emit::to_yaml;
pub(crate) use load::{Budget, DEFAULT_BUDGET, load};
