//! Service port assignment: `port: 0` (or `servicePort: 0`) gets the lowest free port
//! of 10000–20000; re-sending 0 for a port the app already holds keeps it.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// The first and last service port Marathon hands out (`local_port_min/max`).
pub const RANGE: (i64, i64) = (10000, 20000);

/// The service ports in use across all apps.
#[derive(Debug, Default)]
pub struct ServicePorts {
    used: BTreeSet<i64>,
    /// No port below this is free (keeps assignment cheap for 10k apps).
    lowest_free_hint: i64,
}

impl ServicePorts {
    /// Mark ports as used.
    pub fn claim(&mut self, ports: &[i64]) {
        self.used.extend(ports.iter().copied().filter(|p| *p > 0));
    }

    /// Give ports back.
    pub fn release(&mut self, ports: &[i64]) {
        for port in ports {
            if self.used.remove(port) && *port < self.lowest_free_hint {
                self.lowest_free_hint = *port;
            }
        }
    }

    fn next_free(&mut self) -> Option<i64> {
        let start = self.lowest_free_hint.max(RANGE.0);
        let port = (start..=RANGE.1).find(|p| !self.used.contains(p))?;
        self.lowest_free_hint = port + 1;
        self.used.insert(port);
        Some(port)
    }

    /// Fill every 0 service port of `definition`; `previous` are the ports the app held
    /// before (position by position). The caller releases the previous ports first.
    pub fn assign(&mut self, definition: &mut Map<String, Value>, previous: &[i64]) -> Result<(), String> {
        let mut index = 0;
        if let Some(Value::Array(defs)) = definition.get_mut("portDefinitions") {
            for slot in defs.iter_mut().filter_map(|d| d.get_mut("port")) {
                self.fill(slot, previous.get(index).copied())?;
                index += 1;
            }
        }
        if let Some(Value::Array(mappings)) =
            definition.get_mut("container").and_then(|c| c.get_mut("portMappings"))
        {
            for slot in mappings.iter_mut().filter_map(|m| m.get_mut("servicePort")) {
                self.fill(slot, previous.get(index).copied())?;
                index += 1;
            }
        }
        Ok(())
    }

    fn fill(&mut self, slot: &mut Value, previous: Option<i64>) -> Result<(), String> {
        let requested = slot.as_i64().unwrap_or(0);
        let port = if requested != 0 {
            requested
        } else {
            match previous.filter(|p| *p != 0 && !self.used.contains(p)) {
                Some(kept) => kept,
                None => self.next_free().ok_or("no free service port in 10000-20000")?,
            }
        };
        self.used.insert(port);
        *slot = json!(port);
        Ok(())
    }
}
