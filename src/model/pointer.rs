//! RFC 6901 JSON pointers: the one place that escapes, splits and removes by them
//! (the loader, the normalizers, the diff and import all address values this way).

use serde_json::Value;

/// Split an RFC 6901 pointer into unescaped tokens (`~1` → `/`, `~0` → `~`).
pub fn pointer_tokens(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect()
}

/// Escape one token for an RFC 6901 pointer (`~` → `~0`, `/` → `~1`).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Remove the value at `pointer`; returns it if it was there.
pub fn remove_pointer(value: &mut Value, pointer: &str) -> Option<Value> {
    let tokens = pointer_tokens(pointer);
    let (last, parents) = tokens.split_last()?;
    let mut cur = value;
    for t in parents {
        cur = match cur {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => a.get_mut(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match cur {
        Value::Object(m) => m.shift_remove(last),
        Value::Array(a) => {
            let i = last.parse::<usize>().ok().filter(|i| *i < a.len())?;
            Some(a.remove(i))
        }
        _ => None,
    }
}
