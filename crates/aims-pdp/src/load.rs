//! Loading a policy set: schema, policies and entity data, from a directory or strings,
//! validated as a whole before it can be used.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{
    Entities, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator,
    schema_str_to_json_with_resolved_types,
};
use miette::Diagnostic;
use serde_json::Value;

use crate::error::{Location, PdpError};

/// One named source text (a file's path, or any name for text from the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// Name used in error locations and default policy ids.
    pub name: String,
    /// The text.
    pub text: String,
}

impl PolicySource {
    /// A named source.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// Everything a policy set is made of, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyBundle {
    /// The Cedar schema (human-readable `.cedarschema` syntax).
    pub schema: PolicySource,
    /// Cedar policy files (`.cedar`).
    pub policies: Vec<PolicySource>,
    /// Entity data in Cedar's JSON entity format, if any.
    pub entities: Option<PolicySource>,
}

impl PolicyBundle {
    /// Reads a policy directory: exactly one `*.cedarschema`, every `*.cedar` (in name
    /// order) and `entities.json` if present. Subdirectories (such as `tests/`) are not
    /// read.
    pub fn from_dir(dir: &Path) -> Result<Self, PdpError> {
        let io = |path: &Path, source| PdpError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            if entry
                .file_type()
                .map_err(|e| io(&entry.path(), e))?
                .is_file()
            {
                names.push(entry.path());
            }
        }
        names.sort();
        let read = |path: &Path| -> Result<PolicySource, PdpError> {
            let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
            Ok(PolicySource::new(path.display().to_string(), text))
        };
        let has_ext = |p: &Path, ext: &str| p.extension().is_some_and(|e| e == ext);
        let schemas: Vec<_> = names.iter().filter(|p| has_ext(p, "cedarschema")).collect();
        let schema = match schemas.as_slice() {
            [one] => read(one)?,
            [] => {
                return Err(PdpError::SchemaFile(format!(
                    "{}: no `*.cedarschema` file",
                    dir.display()
                )));
            }
            _ => {
                return Err(PdpError::SchemaFile(format!(
                    "{}: more than one `*.cedarschema` file",
                    dir.display()
                )));
            }
        };
        let policies = names
            .iter()
            .filter(|p| has_ext(p, "cedar"))
            .map(|p| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        let entities_path = dir.join("entities.json");
        let entities = if entities_path.is_file() {
            Some(read(&entities_path)?)
        } else {
            None
        };
        Ok(Self {
            schema,
            policies,
            entities,
        })
    }
}

/// A validated policy set, ready to index.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) schema: Schema,
    pub(crate) policies: Vec<Policy>,
    pub(crate) full: PolicySet,
    pub(crate) entities: Entities,
    /// entity type → attribute names the schema declares
    pub(crate) attributes: HashMap<String, HashSet<String>>,
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let upto = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = upto.matches('\n').count() + 1;
    let col = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn locate(diag: &dyn Diagnostic, source: &PolicySource) -> Location {
    let offset = diag
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset())
        .or_else(|| {
            diag.related()
                .and_then(|mut r| r.next())
                .and_then(|d| d.labels().and_then(|mut l| l.next()).map(|l| l.offset()))
        });
    let (line, column) = match offset {
        Some(o) => {
            let (l, c) = line_col(&source.text, o);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    Location {
        source: source.name.clone(),
        line,
        column,
    }
}

fn message(diag: &dyn Diagnostic) -> String {
    let mut msg = diag.to_string();
    if let Some(help) = diag.help() {
        msg.push_str(&format!(" (help: {help})"));
    }
    msg
}

/// Default policy id: `@id("…")` if present, else `<source name>#<n>`.
fn policy_id(policy: &Policy, source: &PolicySource, n: usize) -> String {
    match policy.annotation("id") {
        Some(id) => id.to_owned(),
        None => {
            let short = Path::new(&source.name)
                .file_name()
                .map_or_else(|| source.name.clone(), |f| f.to_string_lossy().into_owned());
            format!("{short}#{n}")
        }
    }
}

/// Parses and validates a bundle.
pub(crate) fn load(bundle: &PolicyBundle) -> Result<Loaded, PdpError> {
    let schema_src = &bundle.schema;
    let schema = match Schema::from_cedarschema_str(&schema_src.text) {
        Ok((schema, _warnings)) => schema,
        Err(e) => {
            return Err(PdpError::Schema {
                location: locate(&e, schema_src),
                message: message(&e),
            });
        }
    };
    let attributes = declared_attributes(&schema_src.text);

    let mut policies = Vec::new();
    let mut origin: HashMap<String, usize> = HashMap::new();
    for (src_idx, source) in bundle.policies.iter().enumerate() {
        let set = PolicySet::from_str(&source.text).map_err(|e| PdpError::PolicySyntax {
            location: locate(&e, source),
            message: message(&e),
        })?;
        if set.templates().next().is_some() {
            return Err(PdpError::Template {
                location: Location {
                    source: source.name.clone(),
                    line: None,
                    column: None,
                },
            });
        }
        // Parser ids are `policy0`, `policy1`… in source order.
        let mut ordered: BTreeMap<usize, &Policy> = BTreeMap::new();
        for p in set.policies() {
            let n = p
                .id()
                .to_string()
                .strip_prefix("policy")
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            ordered.insert(n, p);
        }
        for (n, p) in ordered {
            let id = policy_id(p, source, n);
            if origin.insert(id.clone(), src_idx).is_some() {
                return Err(PdpError::DuplicatePolicyId {
                    location: Location {
                        source: source.name.clone(),
                        line: None,
                        column: None,
                    },
                    id,
                });
            }
            policies.push(p.new_id(PolicyId::new(id)));
        }
    }
    let full = PolicySet::from_policies(policies.iter().cloned()).map_err(|e| {
        PdpError::DuplicatePolicyId {
            location: Location {
                source: "policies".into(),
                line: None,
                column: None,
            },
            id: e.to_string(),
        }
    })?;
    let validation = Validator::new(schema.clone()).validate(&full, ValidationMode::Strict);
    if let Some(e) = validation.validation_errors().next() {
        let policy = e.policy_id().to_string();
        let source = origin
            .get(&policy)
            .and_then(|i| bundle.policies.get(*i))
            .unwrap_or(schema_src);
        return Err(PdpError::Validation {
            location: locate(e, source),
            policy,
            message: message(e),
        });
    }

    let entities = match &bundle.entities {
        Some(src) => {
            Entities::from_json_str(&src.text, Some(&schema)).map_err(|e| PdpError::Entities {
                source_name: src.name.clone(),
                message: message(&e),
            })?
        }
        None => Entities::from_entities([], Some(&schema)).map_err(|e| PdpError::Entities {
            source_name: schema_src.name.clone(),
            message: message(&e),
        })?,
    };
    Ok(Loaded {
        schema,
        policies,
        full,
        entities,
        attributes,
    })
}

/// Attribute names declared for each entity type, from the schema's JSON form
/// (`{"<namespace>": {"entityTypes": {"<T>": {"shape": {"attributes": …}}}, "commonTypes": …}}`).
fn declared_attributes(schema_text: &str) -> HashMap<String, HashSet<String>> {
    let mut out = HashMap::new();
    let Ok((json, _)) = schema_str_to_json_with_resolved_types(schema_text) else {
        return out;
    };
    let Some(namespaces) = json.as_object() else {
        return out;
    };
    for (ns, body) in namespaces {
        let common = body.get("commonTypes");
        let Some(types) = body.get("entityTypes").and_then(Value::as_object) else {
            continue;
        };
        for (name, def) in types {
            let mut shape = def.get("shape");
            // A shape naming a common type: look it up in the same namespace.
            if let Some(s) = shape
                && s.get("attributes").is_none()
                && let Some(reference) = s.get("name").and_then(Value::as_str)
            {
                let local = reference.rsplit("::").next().unwrap_or(reference);
                shape = common.and_then(|c| c.get(local));
            }
            let attrs: HashSet<String> = shape
                .and_then(|s| s.get("attributes"))
                .and_then(Value::as_object)
                .map(|a| a.keys().cloned().collect())
                .unwrap_or_default();
            let full = if ns.is_empty() {
                name.clone()
            } else {
                format!("{ns}::{name}")
            };
            out.insert(full, attrs);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn declared_attributes_from_schema() {
        let a = declared_attributes(
            "entity U { role?: String }; entity V = { a: String, b?: Long }; namespace N { entity W { x: Bool }; }",
        );
        assert_eq!(a["U"], HashSet::from(["role".to_owned()]));
        assert_eq!(a["V"], HashSet::from(["a".to_owned(), "b".to_owned()]));
        assert_eq!(a["N::W"], HashSet::from(["x".to_owned()]));
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
