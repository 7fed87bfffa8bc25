//! An action's TOML `payload` as the JSON the server answers with.

use serde_json::{Map, Number, Value};

pub(crate) fn toml_table_to_json(table: &toml::Table) -> Map<String, Value> {
    table
        .iter()
        .map(|(k, v)| (k.clone(), toml_to_json(v)))
        .collect()
}

fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::Number((*i).into()),
        // JSON has no NaN or infinity.
        toml::Value::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(toml_table_to_json(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_every_toml_type() {
        let t: toml::Table = toml::from_str(
            "s = \"hi\"\ni = 3\nf = 1.5\nb = true\nd = 2025-09-01\na = [1, \"x\"]\n[t]\nk = \"v\"\n",
        )
        .unwrap();
        let j = Value::Object(toml_table_to_json(&t));
        assert_eq!(
            j,
            serde_json::json!({"s": "hi", "i": 3, "f": 1.5, "b": true, "d": "2025-09-01",
                               "a": [1, "x"], "t": {"k": "v"}})
        );
    }
}
