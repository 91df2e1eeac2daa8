//! Whether a domain's DKIM selectors point at the platform's keys.

use serde::Serialize;

use super::parse::{DkimKey, looks_like_key, parse_key};
use crate::dns::{Answer, Dns, TemporaryFailure};
use crate::name::{DomainName, normalize};
use crate::problem::{Method, Problem, ProblemCode};
use crate::status::MethodStatus;

/// One selector the platform expects: the customer's host and where it must point, and, when
/// the platform hosts the keys, the key it publishes there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpectedSelector {
    pub selector: String,
    pub target: String,
    #[serde(skip)]
    pub key: Option<HostedKey>,
}

/// The key the platform holds for a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedKey {
    pub selector: String,
    /// Where the key is published (the selector's CNAME target), fixed when the domain was
    /// connected: a later change of the configured target template does not move it.
    pub target: String,
    /// The `p=` value; empty when the key is revoked (between rotations).
    pub public_key: String,
    /// Whether mail is signed with it now.
    pub signing: bool,
}

/// What was found for one selector.
#[derive(Clone, Debug, Serialize)]
pub struct SelectorCheck {
    pub selector: String,
    /// `<selector>._domainkey.<domain>`.
    pub host: String,
    pub expected_target: String,
    /// The CNAME target found at the host, if any.
    pub found_target: Option<String>,
    /// The key found (at the target, or directly at the host when flattened).
    pub key: Option<DkimKey>,
    /// The key is published directly at the host instead of through the CNAME.
    pub flattened: bool,
    pub status: MethodStatus,
}

/// The DKIM half of a verification.
#[derive(Clone, Debug, Serialize)]
pub struct DkimCheck {
    pub status: MethodStatus,
    pub selectors: Vec<SelectorCheck>,
    /// This method's problems; serialized once, in the domain's list, not here again.
    #[serde(skip)]
    pub problems: Vec<Problem>,
}

/// Checks every expected selector of `domain`.
pub async fn verify_dkim(dns: &Dns, domain: &DomainName, expected: &[ExpectedSelector]) -> DkimCheck {
    let mut problems = Vec::new();
    let mut selectors = Vec::new();
    for selector in expected {
        let from = problems.len();
        let check = check_selector(dns, domain, selector, &mut problems).await;
        Problem::locate(&mut problems, from, &check.host);
        selectors.push(check);
    }
    DkimCheck { status: combined_status(&selectors), selectors, problems }
}

/// Checks selectors of any domain (no platform expectations): each must lead to a usable key,
/// directly or through a CNAME.
pub async fn check_selectors(dns: &Dns, domain: &DomainName, selectors: &[String]) -> DkimCheck {
    let mut problems = Vec::new();
    let mut checks = Vec::new();
    for selector in selectors {
        let from = problems.len();
        let host = format!("{selector}._domainkey.{domain}");
        let mut check = SelectorCheck {
            selector: selector.clone(),
            host: host.clone(),
            expected_target: String::new(),
            found_target: None,
            key: None,
            flattened: false,
            status: MethodStatus::NotVerified,
        };
        let outcome = async {
            check.found_target = dns.cname(&host).await?.records().into_iter().next();
            key_at(dns, &host).await
        }
        .await;
        match outcome {
            Err(failure) => {
                check.status = MethodStatus::Unknown;
                problems.push(Problem::temporary(Method::Dkim, &failure));
            }
            Ok(Some(Ok(key))) if !key.is_revoked() => {
                check.key = Some(key);
                check.status = MethodStatus::Verified;
            }
            Ok(Some(Ok(_))) => problems.push(Problem::error(
                ProblemCode::DkimKeyMissing,
                Method::Dkim,
                format!("the DKIM key at {host} is revoked (empty p=)"),
                "Publish the current key, or stop signing with this selector.",
            )),
            Ok(Some(Err(reason))) => problems.push(Problem::error(
                ProblemCode::DkimKeyInvalid,
                Method::Dkim,
                format!("the DKIM key at {host} is invalid: {reason}"),
                "Publish the key again exactly as your mail provider gives it.",
            )),
            Ok(None) => problems.push(Problem::error(
                ProblemCode::DkimSelectorMissing,
                Method::Dkim,
                format!("no DKIM key at {host}"),
                "Check the selector name (it is in the s= tag of your messages' DKIM-Signature header) and publish its key.",
            )),
        }
        Problem::locate(&mut problems, from, &check.host);
        checks.push(check);
    }
    DkimCheck { status: combined_status(&checks), selectors: checks, problems }
}

fn combined_status(selectors: &[SelectorCheck]) -> MethodStatus {
    if selectors.iter().all(|check| check.status == MethodStatus::Verified) {
        MethodStatus::Verified
    } else if selectors.iter().any(|check| check.status == MethodStatus::NotVerified) {
        MethodStatus::NotVerified
    } else {
        MethodStatus::Unknown
    }
}

/// A DKIM key at a name: `Ok(None)` when there is none.
async fn key_at(dns: &Dns, name: &str) -> Result<Option<Result<DkimKey, String>>, TemporaryFailure> {
    Ok(find_key(dns.txt(name).await?.records()))
}

/// The DKIM key among TXT records, parsed.
fn find_key(records: Vec<Vec<u8>>) -> Option<Result<DkimKey, String>> {
    let texts: Vec<String> = records.iter().map(|text| String::from_utf8_lossy(text).into_owned()).collect();
    texts.iter().find(|text| looks_like_key(text)).map(|text| parse_key(text).map_err(|error| error.to_string()))
}

async fn check_selector(
    dns: &Dns,
    domain: &DomainName,
    expected: &ExpectedSelector,
    problems: &mut Vec<Problem>,
) -> SelectorCheck {
    let host = format!("{}._domainkey.{domain}", expected.selector);
    let mut check = SelectorCheck {
        selector: expected.selector.clone(),
        host: host.clone(),
        expected_target: normalize(&expected.target),
        found_target: None,
        key: None,
        flattened: false,
        status: MethodStatus::NotVerified,
    };
    match check_selector_inner(dns, domain, &mut check, expected.key.as_ref(), problems).await {
        Ok(()) => {}
        Err(failure) => {
            check.status = MethodStatus::Unknown;
            problems.push(Problem::temporary(Method::Dkim, &failure));
        }
    }
    check
}

async fn check_selector_inner(
    dns: &Dns,
    domain: &DomainName,
    check: &mut SelectorCheck,
    hosted: Option<&HostedKey>,
    problems: &mut Vec<Problem>,
) -> Result<(), TemporaryFailure> {
    let host = check.host.clone();
    let expected_target = check.expected_target.clone();
    // One TXT query usually answers everything: the CNAME and the key at its target.
    let (cname, txt) = dns.txt_and_cname(&host).await?;
    let (cname, at_target) = match cname {
        // A server that does not follow the CNAME into another zone returns it alone; then the
        // key is looked up at the target separately.
        Some(target) if txt.as_slice().is_empty() => (Some(target), None),
        Some(target) => (Some(target), Some(find_key(txt.as_slice().to_vec()))),
        None => {
            let flattened = find_key(txt.as_slice().to_vec());
            if flattened.is_some() {
                (None, None)
            } else {
                // Nothing usable came back; ask for the CNAME itself, which a resolver may not
                // return with an answer whose target has no TXT records.
                (dns.cname(&host).await?.records().into_iter().next(), None)
            }
        }
    };
    let name_exists = !matches!(txt, Answer::NxDomain) || cname.is_some();
    if let Some(target) = cname {
        check.found_target = Some(target.clone());
        if target != expected_target {
            problems.push(Problem::error(
                ProblemCode::DkimWrongTarget,
                Method::Dkim,
                format!(
                    "{host} is a CNAME to {target}; expected {expected_target}{}",
                    crate::paste::copying_slip(&target, &expected_target)
                ),
                format!("Change the CNAME record at {host} to point to {expected_target}"),
            ));
            return Ok(());
        }
        let key = match at_target {
            Some(key) => key,
            None => key_at(dns, &expected_target).await?,
        };
        match (key, hosted) {
            // The platform knows which key it publishes there: it must be that one. A revoked
            // key (empty p=) is expected at the idle selector between rotations.
            (Some(Ok(key)), Some(hosted)) if key.public_key == hosted.public_key => {
                check.key = Some(key);
                check.status = MethodStatus::Verified;
            }
            (Some(Ok(key)), Some(hosted)) => {
                let message = format!(
                    "{host} points to {expected_target} correctly, but the key there is not the one the platform holds for {}{}",
                    hosted.selector,
                    if hosted.signing { " and signs with" } else { "" }
                );
                let fix = "The platform's DNS has not caught up with a key change yet (a cached answer expires within the TTL); contact support if this persists.";
                if hosted.signing {
                    problems.push(Problem::error(ProblemCode::DkimKeyNotCurrent, Method::Dkim, message, fix));
                } else {
                    // Signing does not use this selector now: nothing fails yet.
                    check.key = Some(key);
                    check.status = MethodStatus::Verified;
                    problems.push(Problem::warning(ProblemCode::DkimKeyNotCurrent, Method::Dkim, message, fix));
                }
            }
            (Some(Ok(key)), None) if !key.is_revoked() => {
                check.key = Some(key);
                check.status = MethodStatus::Verified;
            }
            (Some(Ok(_)), None) => problems.push(Problem::error(
                ProblemCode::DkimKeyMissing,
                Method::Dkim,
                format!("{host} points to {expected_target} correctly, but the key there is revoked (empty p=)"),
                "The key is being rotated or was withdrawn by the platform; contact support if this persists.",
            )),
            (Some(Err(reason)), _) => problems.push(Problem::error(
                ProblemCode::DkimKeyInvalid,
                Method::Dkim,
                format!("{host} points to {expected_target} correctly, but the key there is invalid: {reason}"),
                "The platform's key record is broken; contact support.",
            )),
            (None, _) => problems.push(Problem::error(
                ProblemCode::DkimKeyMissing,
                Method::Dkim,
                format!("{host} points to {expected_target} correctly, but no DKIM key is published there"),
                "The platform has not published this key yet; it should appear shortly. Contact support if it does not.",
            )),
        }
        return Ok(());
    }
    // No CNAME. A key published at the host itself means a DNS host flattened the CNAME.
    let flattened_key = if name_exists { find_key(txt.as_slice().to_vec()) } else { None };
    if let Some(flattened) = flattened_key {
        check.flattened = true;
        // The key it must equal: the one the platform holds, or else the one at the target.
        let expected_key = match hosted {
            Some(hosted) => Some(hosted.public_key.clone()),
            None => match key_at(dns, &expected_target).await? {
                Some(Ok(key)) => Some(key.public_key),
                _ => None,
            },
        };
        match (flattened, expected_key) {
            (Ok(found), Some(expected)) if found.public_key == expected && !found.is_revoked() => {
                check.key = Some(found);
                check.status = MethodStatus::Verified;
                problems.push(Problem::warning(
                    ProblemCode::DkimFlattened,
                    Method::Dkim,
                    format!("{host} holds a copy of the key instead of a CNAME to {expected_target}"),
                    format!(
                        "Your DNS host flattened the CNAME (Cloudflare: CNAME flattening or the proxy). It works now, but the next key rotation will break signing. Turn flattening and the proxy off for {host}."
                    ),
                ));
            }
            _ => problems.push(Problem::error(
                ProblemCode::DkimFlattenedKeyMismatch,
                Method::Dkim,
                format!("{host} holds a DKIM key that is not the current key at {expected_target}"),
                format!(
                    "Replace the TXT record at {host} with a CNAME to {expected_target}, and turn off CNAME flattening or the proxy for it."
                ),
            )),
        }
        return Ok(());
    }
    // Not in any RFC, but common: a DNS host that appends its zone to what was typed as the Host.
    let doubled = format!("{host}.{}", domain.organizational_domain());
    let doubled_target = if crate::paste::doubled_zone_exists(dns, domain).await {
        dns.cname(&doubled).await?.records().into_iter().next()
    } else {
        None
    };
    if let Some(target) = doubled_target {
        check.found_target = Some(target.clone());
        problems.push(Problem::error(
            ProblemCode::DkimHostDoubled,
            Method::Dkim,
            format!("the CNAME was created at {doubled} instead of {host}"),
            format!(
                "Your DNS host adds the domain to the Host field by itself. Edit the record and enter only \"{}\" as the Host.",
                host.strip_suffix(&format!(".{}", domain.organizational_domain())).unwrap_or(&host)
            ),
        ));
        return Ok(());
    }
    // A record of another type at the right name (often the target pasted as a TXT record).
    let other = if name_exists { txt.as_slice().first().cloned() } else { None };
    if let Some(text) = other {
        problems.push(Problem::error(
            ProblemCode::DkimWrongType,
            Method::Dkim,
            format!(
                "{host} holds a TXT record ({}); it must be a CNAME pointing to {expected_target}",
                String::from_utf8_lossy(&text).chars().take(100).collect::<String>()
            ),
            format!("Delete the TXT record at {host} and add a CNAME record there pointing to {expected_target}"),
        ));
        return Ok(());
    }
    // A proxied CNAME (Cloudflare's orange cloud): the name answers with the proxy's addresses,
    // and neither the CNAME nor the key behind it is visible to receivers.
    if name_exists && !dns.a(&host).await?.records().is_empty() {
        problems.push(Problem::error(
            ProblemCode::DkimProxied,
            Method::Dkim,
            format!("{host} answers with IP addresses instead of a CNAME: the record is proxied, so receivers cannot find the key"),
            format!(
                "Turn the proxy off for the record at {host} (Cloudflare: DNS only, the grey cloud) so that it is served as a CNAME to {expected_target}"
            ),
        ));
        return Ok(());
    }
    problems.push(Problem::error(
        ProblemCode::DkimSelectorMissing,
        Method::Dkim,
        format!("no CNAME record at {host}; expected one pointing to {expected_target}"),
        format!("Add a CNAME record at {host} pointing to {expected_target}"),
    ));
    Ok(())
}
