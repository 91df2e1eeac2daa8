//! Whether a domain's return-path host leads to the platform's: a CNAME to its target, or a
//! copy of the target's records (flattened) that authorizes every sending address and names the
//! bounce hosts.

use serde::Serialize;

use crate::cidr::IpNetwork;
use crate::dns::{Answer, Dns, TemporaryFailure};
use crate::name::normalize;
use crate::problem::{Method, Problem, ProblemCode};
use crate::spf::eval::{SpfResult, check_host};
use crate::status::MethodStatus;

/// What the platform expects of one domain's return-path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnPathExpectation {
    /// `rp.<domain>`.
    pub host: String,
    /// Where the CNAME points, in the platform's zone.
    pub target: String,
    /// The MX hosts at the target.
    pub bounce_hosts: Vec<String>,
    /// The platform's sending networks.
    pub sending_networks: Vec<IpNetwork>,
}

/// What was found.
#[derive(Clone, Debug, Serialize)]
pub struct ReturnPathCheck {
    pub status: MethodStatus,
    pub host: String,
    pub expected_target: String,
    /// The CNAME target found at the host, if any.
    pub found_target: Option<String>,
    /// The records are a copy of the target's, not a CNAME to it.
    pub flattened: bool,
    #[serde(skip)]
    pub problems: Vec<Problem>,
}

/// Checks a domain's return-path host.
pub async fn verify_return_path(dns: &Dns, expected: &ReturnPathExpectation) -> ReturnPathCheck {
    let mut check = ReturnPathCheck {
        status: MethodStatus::NotVerified,
        host: expected.host.clone(),
        expected_target: expected.target.clone(),
        found_target: None,
        flattened: false,
        problems: Vec::new(),
    };
    if let Err(failure) = inspect(dns, expected, &mut check).await {
        check.status = MethodStatus::Unknown;
        check.problems.push(Problem::temporary(Method::ReturnPath, &failure));
    }
    Problem::locate(&mut check.problems, 0, &expected.host);
    check
}

/// The warning for a domain whose DMARC record asks for strict SPF alignment (`aspf=s`): SPF
/// passes for the return-path host, which strict alignment does not take as the From domain.
/// Said whatever the return-path's status.
pub fn strict_alignment_problem(host: &str) -> Problem {
    let mut problem = Problem::warning(
        ProblemCode::ReturnPathStrictAlignment,
        Method::ReturnPath,
        format!(
            "the DMARC record asks for strict SPF alignment (aspf=s): SPF passes for {host}, which strict alignment \
             does not take as the From domain, so DKIM alone carries DMARC"
        ),
        "Remove aspf=s from the DMARC record (relaxed alignment is the default and accepts the return-path), or \
         keep it knowing that a broken DKIM signature then fails DMARC.",
    );
    problem.host = Some(host.to_string());
    problem
}

async fn inspect(
    dns: &Dns,
    expected: &ReturnPathExpectation,
    check: &mut ReturnPathCheck,
) -> Result<(), TemporaryFailure> {
    let host = &expected.host;
    let target = normalize(&expected.target);
    let cname = dns.cname(host).await?;
    let host_exists = !matches!(cname, Answer::NxDomain);
    check.found_target = cname.records().into_iter().next().map(|found| normalize(&found));
    match &check.found_target {
        Some(found) if *found == target => {
            check.status = MethodStatus::Verified;
            return Ok(());
        }
        Some(found) => {
            check.problems.push(Problem::error(
                ProblemCode::ReturnPathWrongTarget,
                Method::ReturnPath,
                format!("the CNAME at {host} points to {found}, not to {target}"),
                format!("Change the CNAME at {host} to point to {target}."),
            ));
            return Ok(());
        }
        None => {}
    }
    // No CNAME: a copy of the target's records, someone else's records, or nothing. A name that
    // does not exist has nothing below it either (RFC 8020), so most hosts take one query.
    let (texts, exchanges, addresses) = if host_exists {
        let (texts, exchanges, addresses) = tokio::join!(dns.txt(host), dns.mx(host), dns.addresses(host, false));
        (texts?.records(), exchanges?.records(), addresses?)
    } else {
        (Vec::new(), Vec::new(), Answer::NxDomain)
    };
    let texts: Vec<String> = texts.into_iter().map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).collect();
    let exchanges: Vec<String> = exchanges.into_iter().map(|mx| normalize(&mx)).collect();
    let has_spf = texts.iter().any(|text| text.to_ascii_lowercase().starts_with("v=spf1"));
    if texts.is_empty() && exchanges.is_empty() && matches!(addresses, Answer::NoData | Answer::NxDomain) {
        // A warning, not an error: mail is sent (with the platform's bounce domain as envelope
        // sender) and passes DMARC through DKIM until it is added.
        check.problems.push(Problem::warning(
            ProblemCode::ReturnPathMissing,
            Method::ReturnPath,
            format!("no CNAME at {host}"),
            format!(
                "Add a CNAME record at {host} pointing to {target}: with it, your mail passes SPF aligned with your \
                 domain too, not only DKIM, and bounces come back to the platform."
            ),
        ));
        return Ok(());
    }
    let bounce_hosts: Vec<String> = expected.bounce_hosts.iter().map(|host| normalize(host)).collect();
    let names_bounce_hosts = !exchanges.is_empty() && exchanges.iter().all(|exchange| bounce_hosts.contains(exchange));
    if has_spf && names_bounce_hosts && authorizes_every_sending_address(dns, host, &expected.sending_networks).await? {
        check.flattened = true;
        check.status = MethodStatus::Verified;
        check.problems.push(Problem::warning(
            ProblemCode::ReturnPathFlattened,
            Method::ReturnPath,
            format!("{host} holds a copy of the platform's records instead of a CNAME to {target}"),
            format!(
                "It works today, but when the platform's sending addresses or bounce hosts change, the copy goes \
                 stale. Replace the records at {host} with a CNAME to {target}."
            ),
        ));
        return Ok(());
    }
    // Records of the customer's own at the name: a CNAME cannot sit beside them.
    let mut kinds = Vec::new();
    if !texts.is_empty() {
        kinds.push("TXT");
    }
    if !exchanges.is_empty() {
        kinds.push("MX");
    }
    if matches!(addresses, Answer::Records(_)) {
        kinds.push("A");
    }
    check.problems.push(Problem::error(
        ProblemCode::ReturnPathConflict,
        Method::ReturnPath,
        format!(
            "{host} already has {} records of its own, so it cannot also be a CNAME to {target} (a CNAME stands alone \
             at its name, RFC 1034 section 3.6.2)",
            kinds.join(" and ")
        ),
        format!(
            "If those records are not in use, remove them and add the CNAME at {host} to {target}; if they are, \
             the return-path needs another host: ask the platform."
        ),
    ));
    Ok(())
}

/// Whether SPF at `host` passes for both ends of every sending network.
async fn authorizes_every_sending_address(
    dns: &Dns,
    host: &str,
    networks: &[IpNetwork],
) -> Result<bool, TemporaryFailure> {
    for network in networks {
        let (first, last) = network.ends();
        for address in [first, last] {
            let sender = format!("bounce@{host}");
            let evaluation = check_host(dns, address, host, &sender, host).await;
            match evaluation.result {
                SpfResult::Pass => {}
                SpfResult::TempError => {
                    return Err(TemporaryFailure {
                        name: host.to_string(),
                        record_type: "TXT".to_string(),
                        reason: format!("SPF for {address} could not be evaluated for now"),
                    });
                }
                _ => return Ok(false),
            }
        }
    }
    Ok(true)
}
