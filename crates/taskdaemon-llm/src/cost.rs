//! Token prices and cost accounting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::Usage;

/// USD per million tokens for one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Uncached input.
    pub input: f64,
    /// Output.
    pub output: f64,
    /// Prompt cache writes.
    pub cache_write: f64,
    /// Prompt cache reads.
    pub cache_read: f64,
}

impl Price {
    /// The cost of `usage` at this price, in USD.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input
            + usage.output_tokens as f64 * self.output
            + usage.cache_creation_input_tokens as f64 * self.cache_write
            + usage.cache_read_input_tokens as f64 * self.cache_read)
            / 1_000_000.0
    }
}

/// Prices by model name. A model matches an entry exactly, else the longest
/// entry that is a prefix of it (so `claude-sonnet-4-5-20250929` uses
/// `claude-sonnet-4`). Unknown models cost 0 and are reported as unpriced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl Default for PriceTable {
    fn default() -> Self {
        let p = |input, output, cache_write, cache_read| Price {
            input,
            output,
            cache_write,
            cache_read,
        };
        let mut prices = BTreeMap::new();
        // List prices at the time of writing; callers override with `set`.
        prices.insert("claude-opus-4".into(), p(15.0, 75.0, 18.75, 1.5));
        prices.insert("claude-sonnet-4".into(), p(3.0, 15.0, 3.75, 0.3));
        prices.insert("claude-3-7-sonnet".into(), p(3.0, 15.0, 3.75, 0.3));
        prices.insert("claude-3-5-sonnet".into(), p(3.0, 15.0, 3.75, 0.3));
        prices.insert("claude-haiku-4".into(), p(1.0, 5.0, 1.25, 0.1));
        prices.insert("claude-3-5-haiku".into(), p(0.8, 4.0, 1.0, 0.08));
        prices.insert("gpt-4o".into(), p(2.5, 10.0, 2.5, 1.25));
        prices.insert("gpt-4o-mini".into(), p(0.15, 0.6, 0.15, 0.075));
        prices.insert("gpt-4.1".into(), p(2.0, 8.0, 2.0, 0.5));
        prices.insert("gpt-4.1-mini".into(), p(0.4, 1.6, 0.4, 0.1));
        PriceTable { prices }
    }
}

impl PriceTable {
    /// A table with no prices.
    pub fn empty() -> Self {
        PriceTable {
            prices: BTreeMap::new(),
        }
    }

    /// Sets (or overrides) a model's price.
    pub fn set(&mut self, model: impl Into<String>, price: Price) -> &mut Self {
        self.prices.insert(model.into(), price);
        self
    }

    /// The price for `model`, if known.
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.prices.get(model) {
            return Some(*p);
        }
        self.prices
            .iter()
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }

    /// The cost of `usage` on `model` in USD; `None` when the model has no price.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model).map(|p| p.cost(usage))
    }
}

/// Running totals for an iteration or a whole loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Accounting {
    /// Tokens.
    pub usage: Usage,
    /// USD (0 for unpriced models).
    pub cost_usd: f64,
    /// Model calls made.
    pub calls: u32,
}

impl Accounting {
    /// Adds one call's usage, priced with `prices`.
    pub fn record(&mut self, prices: &PriceTable, model: &str, usage: &Usage) {
        self.usage.add(usage);
        self.cost_usd += prices.cost(model, usage).unwrap_or(0.0);
        self.calls += 1;
    }

    /// Adds another total.
    pub fn add(&mut self, other: &Accounting) {
        self.usage.add(&other.usage);
        self.cost_usd += other.cost_usd;
        self.calls += other.calls;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_match_override_and_sum() {
        let mut table = PriceTable::default();
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 1_000_000,
        };
        let cost = table.cost("claude-sonnet-4-5-20250929", &usage).unwrap();
        assert!((cost - (3.0 + 1.5 + 0.3)).abs() < 1e-9, "{cost}");
        // gpt-4o-mini must not be priced as gpt-4o.
        assert_eq!(table.price("gpt-4o-mini-2024").unwrap().input, 0.15);
        assert_eq!(table.cost("mystery", &usage), None);
        table.set(
            "mystery",
            Price {
                input: 1.0,
                output: 0.0,
                cache_write: 0.0,
                cache_read: 0.0,
            },
        );
        assert_eq!(table.cost("mystery", &usage), Some(1.0));

        let mut total = Accounting::default();
        total.record(&table, "mystery", &usage);
        total.record(&table, "mystery", &usage);
        assert_eq!(total.calls, 2);
        assert_eq!(total.usage.input_tokens, 2_000_000);
        assert!((total.cost_usd - 2.0).abs() < 1e-9);
    }
}
