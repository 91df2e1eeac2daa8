//! The include tree of an SPF record, walked without a client address: what every
//! `include`/`redirect` leads to and what it costs in DNS lookups (RFC 7208 section 4.6.4).

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use super::eval::{MAX_DNS_LOOKUPS, is_valid_domain};
use super::parse::{Mechanism, Term, is_spf_record, parse_record};
use crate::dns::{Dns, TemporaryFailure};
use crate::name::normalize;

/// Stop walking after this many DNS-querying terms; enough to say how far over 10 a tree is.
const WALK_BUDGET: u32 = 40;

/// One record in the tree.
#[derive(Clone, Debug, Serialize)]
pub struct SpfNode {
    pub domain: String,
    /// How this record was reached: `record`, `include` or `redirect`.
    pub via: &'static str,
    pub record: Option<String>,
    /// DNS-querying terms in this record and everything below it.
    pub lookups: u32,
    pub void_lookups: u32,
    /// Why this branch could not be followed, if it could not.
    pub error: Option<String>,
    pub children: Vec<SpfNode>,
}

/// What the walk found.
#[derive(Clone, Debug, Serialize)]
pub struct SpfTree {
    pub root: SpfNode,
    pub lookups: u32,
    pub void_lookups: u32,
    /// `true` when the walk stopped early because the tree is far over the limit.
    pub truncated: bool,
    /// Domains that include or redirect back to a record already on their path.
    pub loops: Vec<String>,
    /// Include or redirect targets with no SPF record.
    pub missing: Vec<String>,
    /// Records below the root that do not parse.
    pub syntax_errors: Vec<String>,
    /// Every include and redirect target in the tree, normalized.
    pub targets: Vec<String>,
}

struct Walk<'a> {
    dns: &'a Dns,
    spent: u32,
    truncated: bool,
    loops: Vec<String>,
    missing: Vec<String>,
    syntax_errors: Vec<String>,
    targets: Vec<String>,
}

/// Walks the tree under a record given as text (the domain's own, or a proposed one).
pub async fn walk_record(dns: &Dns, domain: &str, record: &str) -> Result<SpfTree, TemporaryFailure> {
    let mut walk = Walk {
        dns,
        spent: 0,
        truncated: false,
        loops: Vec::new(),
        missing: Vec::new(),
        syntax_errors: Vec::new(),
        targets: Vec::new(),
    };
    let domain = normalize(domain);
    let root = walk.node(domain.clone(), "record", Some(record.to_string()), vec![domain]).await?;
    Ok(SpfTree {
        lookups: root.lookups,
        void_lookups: root.void_lookups,
        truncated: walk.truncated,
        loops: walk.loops,
        missing: walk.missing,
        syntax_errors: walk.syntax_errors,
        targets: walk.targets,
        root,
    })
}

impl<'a> Walk<'a> {
    fn node(
        &mut self,
        domain: String,
        via: &'static str,
        known_record: Option<String>,
        path: Vec<String>,
    ) -> Pin<Box<dyn Future<Output = Result<SpfNode, TemporaryFailure>> + Send + '_>> {
        Box::pin(async move {
            let mut node = SpfNode {
                domain: domain.clone(),
                via,
                record: None,
                lookups: 0,
                void_lookups: 0,
                error: None,
                children: Vec::new(),
            };
            let text = match known_record {
                Some(text) => text,
                None => {
                    let records: Vec<String> = self
                        .dns
                        .txt(&domain)
                        .await?
                        .records()
                        .into_iter()
                        .filter(|text| is_spf_record(text))
                        .map(|text| String::from_utf8_lossy(&text).into_owned())
                        .collect();
                    match records.as_slice() {
                        [] => {
                            node.void_lookups = 1;
                            node.error = Some(format!("{domain} has no SPF record"));
                            self.missing.push(domain);
                            return Ok(node);
                        }
                        [one] => one.clone(),
                        _ => {
                            node.error = Some(format!("{domain} has {} SPF records", records.len()));
                            self.syntax_errors.push(format!("{domain}: more than one SPF record"));
                            return Ok(node);
                        }
                    }
                }
            };
            node.record = Some(text.clone());
            let record = match parse_record(&text) {
                Ok(record) => record,
                Err(error) => {
                    node.error = Some(error.to_string());
                    if path.len() > 1 {
                        self.syntax_errors.push(format!("{domain}: {error}"));
                    }
                    return Ok(node);
                }
            };
            let has_all = record.all_qualifier().is_some();
            for term in &record.terms {
                if self.spent > WALK_BUDGET {
                    self.truncated = true;
                    break;
                }
                let (target, child_via) = match term {
                    Term::Directive(directive) if directive.mechanism.queries_dns() => {
                        self.spent += 1;
                        node.lookups += 1;
                        match &directive.mechanism {
                            Mechanism::Include(target) => (target, "include"),
                            Mechanism::A { domain: target, .. } | Mechanism::Mx { domain: target, .. } => {
                                let name = match target {
                                    Some(spec) if spec.has_macros() => continue,
                                    Some(spec) => normalize(&spec.0),
                                    None => domain.clone(),
                                };
                                let is_mx = matches!(directive.mechanism, Mechanism::Mx { .. });
                                if self.is_void(&name, is_mx).await? {
                                    node.void_lookups += 1;
                                }
                                continue;
                            }
                            _ => continue,
                        }
                    }
                    // RFC 7208 section 6.1: with an `all` in the record, redirect is never used.
                    Term::Redirect(target) if !has_all => {
                        self.spent += 1;
                        node.lookups += 1;
                        (target, "redirect")
                    }
                    _ => continue,
                };
                if target.has_macros() {
                    continue;
                }
                let target = normalize(&target.0);
                self.targets.push(target.clone());
                if path.contains(&target) {
                    self.loops.push(format!("{} -> {target}", path.join(" -> ")));
                    node.error.get_or_insert_with(|| format!("{child_via}:{target} loops back to its own path"));
                    continue;
                }
                if !is_valid_domain(&target) {
                    self.missing.push(target.clone());
                    continue;
                }
                let mut child_path = path.clone();
                child_path.push(target.clone());
                let child = self.node(target, child_via, None, child_path).await?;
                node.lookups += child.lookups;
                node.void_lookups += child.void_lookups;
                node.children.push(child);
            }
            Ok(node)
        })
    }

    /// Whether an `a` or `mx` target has no records, as RFC 7208 section 4.6.4 counts voids.
    async fn is_void(&self, name: &str, mx: bool) -> Result<bool, TemporaryFailure> {
        if !is_valid_domain(name) {
            return Ok(true);
        }
        if mx {
            return Ok(self.dns.mx(name).await?.is_void());
        }
        Ok(self.dns.a(name).await?.is_void() && self.dns.aaaa(name).await?.is_void())
    }
}

impl SpfTree {
    /// The lookups each direct include or redirect of the root costs, most expensive first.
    pub fn costs(&self) -> Vec<(String, u32)> {
        let mut costs: Vec<(String, u32)> = self
            .root
            .children
            .iter()
            .map(|child| (format!("{}:{}", child.via, child.domain), child.lookups + 1))
            .collect();
        costs.sort_by_key(|(_, cost)| std::cmp::Reverse(*cost));
        costs
    }

    /// Whether the tree stays within the limit of 10 lookups.
    pub fn within_limit(&self) -> bool {
        !self.truncated && self.lookups <= MAX_DNS_LOOKUPS
    }
}
