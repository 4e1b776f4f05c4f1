//! The JSON Schema of loco.toml, generated from the `raw` types and committed at
//! `core-api/spec/schema/loco.schema.json` so editors (taplo, VS Code Even Better TOML) can offer
//! completion. A test fails when the committed file is stale; regenerate it with
//! `LOCO_BLESS=1 cargo test -p loco-spec --lib schema`.

use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::transform_subschemas;
use serde_json::Value;

use super::raw::LocoToml;

/// Path of the committed schema, relative to the crate root.
pub const SCHEMA_PATH: &str = "schema/loco.schema.json";

/// TOML has no null: an optional key is simply absent. schemars describes `Option<T>` as
/// "T or null", so strip the null alternative everywhere.
fn drop_null(schema: &mut Schema) {
    if let Some(obj) = schema.as_object_mut() {
        let null = Value::Object(
            [("type".to_owned(), Value::from("null"))]
                .into_iter()
                .collect(),
        );
        if let Some(Value::Array(any)) = obj.get("anyOf")
            && any.len() == 2
            && any[1] == null
            && let Value::Object(keep) = any[0].clone()
        {
            obj.remove("anyOf");
            obj.extend(keep);
        }
        if let Some(Value::Array(types)) = obj.get_mut("type") {
            types.retain(|t| t != "null");
            if let [only] = types.as_slice() {
                let only = only.clone();
                obj.insert("type".to_owned(), only);
            }
        }
    }
    transform_subschemas(&mut drop_null, schema);
}

/// The schema as pretty JSON with a trailing newline, exactly as committed.
pub fn loco_toml_schema_json() -> String {
    let schema = SchemaSettings::draft2020_12()
        .with_transform(drop_null as fn(&mut Schema))
        .into_generator()
        .into_root_schema_for::<LocoToml>();
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::read;
    use super::*;

    #[test]
    fn committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_PATH);
        let fresh = loco_toml_schema_json();
        if std::env::var_os("LOCO_BLESS").is_some() {
            std::fs::write(&path, &fresh).expect("write schema");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{} is stale: the loco.toml types changed. Regenerate it with\n    LOCO_BLESS=1 cargo test -p loco-spec --lib schema\nand commit the result.",
            path.display()
        );
    }

    fn props(schema: &serde_json::Value, def: Option<&str>) -> BTreeSet<String> {
        let node = match def {
            None => schema,
            Some(d) => &schema["$defs"][d],
        };
        node["properties"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    /// The reader lists keys by hand; the schema comes from the types. Keep them equal.
    #[test]
    fn reader_keys_match_schema_properties() {
        let schema: serde_json::Value =
            serde_json::from_str(&loco_toml_schema_json()).expect("schema is JSON");
        let cases: &[(Option<&str>, &[&str])] = &[
            (None, read::ROOT_KEYS),
            (Some("Metadata"), read::METADATA_KEYS),
            (Some("Build"), read::BUILD_KEYS),
            (Some("Routing"), read::ROUTING_KEYS),
            (Some("Grpc"), read::GRPC_KEYS),
            (Some("DomainConfig"), read::DOMAIN_KEYS),
            (Some("Region"), read::REGION_KEYS),
            (Some("Replicas"), read::REPLICAS_KEYS),
            (Some("Scalers"), read::SCALERS_KEYS),
            (Some("Profile"), read::PROFILE_KEYS),
            (Some("Health"), read::HEALTH_KEYS),
            (Some("Env"), read::ENV_KEYS),
            (Some("Sleep"), read::SLEEP_KEYS),
            (Some("Obs"), read::OBS_KEYS),
            (Some("Logging"), read::LOGGING_KEYS),
            (Some("Metrics"), read::METRICS_KEYS),
            (Some("Tracing"), read::TRACING_KEYS),
        ];
        for (def, keys) in cases {
            assert_eq!(props(&schema, *def), set(keys), "keys of {def:?}");
        }
    }

    #[test]
    fn schema_refuses_unknown_keys() {
        let schema: serde_json::Value =
            serde_json::from_str(&loco_toml_schema_json()).expect("schema is JSON");
        assert_eq!(
            schema["additionalProperties"],
            serde_json::Value::Bool(false)
        );
        assert_eq!(
            schema["$defs"]["Region"]["additionalProperties"],
            serde_json::Value::Bool(false)
        );
    }
}
