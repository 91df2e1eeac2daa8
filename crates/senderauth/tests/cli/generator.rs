//! An independent report generator end to end: Mail::DMARC (Debian `libmail-dmarc-perl`), as a
//! receiver would run it, evaluates a message from a connected domain whose DMARC record sends
//! reports to the platform's address. Its RFC 7489 section 7.1 check of that external address
//! asks the platform's embedded DNS server for `<domain>._report._dmarc.<report host>`: with the
//! domain connected it finds the authorization, keeps the record and `dmarc_send_reports`
//! delivers the report to the report listener, which stores it; once the domain is removed the
//! authorization is gone and the generator keeps no report for the platform's address.

use std::path::Path;
use std::time::{Duration, Instant};

use senderauth_testkit::http::call;

use super::{admin_and_account, direct_resolver, path, start_service_listening, stop_service, tempdir, zones};

/// Stands in for a receiver's recursive resolver: the platform's zone asked of the platform's
/// nameserver (as its delegation would send it), everything else of the test's DNS server.
const RESOLVER: &str = r#"
package SplitResolver;
use strict;
use warnings;
use Net::DNS;
sub new {
    my ($class, %args) = @_;
    my $at = sub { Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $_[0], dnsrch => 0, retry => 1, udp_timeout => 3, tcp_timeout => 3) };
    return bless { platform => $at->($args{platform}), other => $at->($args{other}), zone => $args{zone} }, $class;
}
sub pick {
    my ($self, $name) = @_;
    my $zone = $self->{zone};
    return $name =~ /(^|\.)\Q$zone\E\.?$/i ? $self->{platform} : $self->{other};
}
sub send { my ($self, $name, @rest) = @_; return $self->pick($name)->send($name, @rest) }
sub query { my ($self, $name, @rest) = @_; return $self->pick($name)->query($name, @rest) }
sub search { my ($self, $name, @rest) = @_; return $self->pick($name)->search($name, @rest) }
sub errorstring { 'no answer' }
1;
"#;

/// The transports Mail::DMARC sends with (its `[smtp] transports` setting): the report
/// listener, as the report host's MX would lead to it.
const TRANSPORTS: &str = r#"
package ListenerTransports;
use strict;
use warnings;
use Email::Sender::Transport::SMTP;
sub new { return bless {}, shift }
sub get_transports_for {
    return Email::Sender::Transport::SMTP->new({ host => '127.0.0.1', port => $ENV{REPORT_LISTENER_PORT}, ssl => 0 });
}
1;
"#;

/// Evaluates one message from shop.example.com and keeps the aggregate record when the report
/// address is authorized; prints what it decided.
const EVALUATE: &str = r#"
use strict;
use warnings;
use SplitResolver;
use Mail::DMARC::PurePerl;
my $dmarc = Mail::DMARC::PurePerl->new;
$dmarc->set_resolver(SplitResolver->new(platform => $ENV{PLATFORM_DNS_PORT}, other => $ENV{OTHER_DNS_PORT}, zone => 'esp.example'));
$dmarc->source_ip('192.0.2.10');
$dmarc->envelope_to('receiver.example.net');
$dmarc->envelope_from('shop.example.com');
$dmarc->header_from('shop.example.com');
$dmarc->dkim([{ domain => 'shop.example.com', selector => 'sa1-1', result => 'pass' }]);
$dmarc->spf([{ domain => 'shop.example.com', scope => 'mfrom', result => 'pass' }]);
my $result = $dmarc->validate;
die "no policy: ", join(' ', map { $_->{type} . ' ' . ($_->{comment} // '') } @{ $result->reason || [] }), "\n"
    if !eval { $result->published };
my $authorized = $dmarc->has_valid_reporting_uri($result->published->rua) ? 1 : 0;
$dmarc->save_aggregate;
print "result=", $result->result, " authorized=$authorized\n";
"#;

#[tokio::test]
async fn an_independent_generator_reports_a_connected_domain_and_stops_once_it_is_removed() {
    let ready = Path::new("/usr/share/perl5/Mail/DMARC.pm").exists();
    if !senderauth_testkit::require_or_skip(ready, "Mail::DMARC (Debian libmail-dmarc-perl)") {
        return;
    }
    let server = zones().await;
    // The customer's domain: its mail host and its DMARC record, reports to the platform.
    server.add("shop.example.com", "MX", "10 mx.shop.example.com");
    server.add("_dmarc.shop.example.com", "TXT", "v=DMARC1; p=none; rua=mailto:dmarc@reports.esp.example");
    let data_dir = tempdir();
    let started = start_service_listening(&[], &data_dir, &server, &[], &[]).await;
    let (_, token) = admin_and_account(&data_dir, started.http, "Shop").await;
    let (status, connected) =
        call(started.http, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "news@shop.example.com"}"#))
            .await;
    assert_eq!(status, 201, "{connected}");

    // The generator's files: its settings (its store a SQLite file here), the resolver, the
    // transports and the evaluation.
    let work = tempdir().join("mail-dmarc");
    std::fs::create_dir_all(&work).expect("dir");
    let store = work.join("dmarc_reports.sqlite");
    std::fs::write(
        work.join("mail-dmarc.ini"),
        format!(
            "[organization]\ndomain = receiver.example.net\norg_name = Receiver Test\nemail = dmarc-reports@receiver.example.net\n\
             extra_contact_info = https://receiver.example.net/dmarc\n\n[report_store]\nbackend = SQL\n\
             dsn = dbi:SQLite:dbname={}\nuser =\npass =\n\n[dmarc]\nbackend = perl\n\n[dns]\ntimeout = 3\n\
             public_suffix_list = /usr/share/publicsuffix/effective_tld_names.dat\n\n[smtp]\nhostname = mx.receiver.example.net\n\
             transports = ListenerTransports\n\n[report_sending]\n",
            path(&store)
        ),
    )
    .expect("ini");
    for (name, text) in
        [("SplitResolver.pm", RESOLVER), ("ListenerTransports.pm", TRANSPORTS), ("evaluate.pl", EVALUATE)]
    {
        std::fs::write(work.join(name), text).expect("perl file");
    }
    // Run on the test's runtime without blocking it: the test DNS server answers on it.
    let perl = |program: &'static str, arguments: &'static [&'static str]| {
        let mut command = tokio::process::Command::new(program);
        command
            .args(arguments)
            .current_dir(&work)
            .env("PERL5LIB", path(&work))
            .env("MAIL_DMARC_CONFIG_FILE", path(&work.join("mail-dmarc.ini")))
            .env("PLATFORM_DNS_PORT", started.dns.port().to_string())
            .env("OTHER_DNS_PORT", server.address().port().to_string())
            .env("REPORT_LISTENER_PORT", started.reports.port().to_string());
        async move {
            let output = command.output().await.expect(program);
            let said =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            assert!(output.status.success(), "{program} {arguments:?}: {said}");
            said
        }
    };
    // The report period ends now, as a day later it would (the generator sends a report once
    // its period is over).
    let close_period = || {
        let script = format!(
            "import sqlite3, time; c = sqlite3.connect({:?}); c.execute('UPDATE report SET end = ?', (int(time.time()) - 1,)); c.commit()",
            path(&store)
        );
        assert!(std::process::Command::new("python3").args(["-c", &script]).status().expect("python3").success());
    };

    // Connected: the authorization is served (within a second), the generator keeps the
    // record and sends the report, and the listener stores it.
    let waited = Instant::now();
    let decided = loop {
        let said = perl("perl", &["evaluate.pl"]).await;
        if said.contains("authorized=1") || waited.elapsed() > Duration::from_secs(5) {
            break said;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(decided.contains("result=pass authorized=1"), "{decided}");
    close_period();
    let sent = perl("dmarc_send_reports", &["--verbose"]).await;
    let senderauth =
        senderauth_store::Store::connect(&format!("sqlite://{}", data_dir.join("senderauth.db").display()))
            .await
            .expect("the service's store");
    let reports = senderauth.reports_about("shop.example.com", 10).await.expect("read");
    assert_eq!(reports.len(), 1, "the generator's report stored: {sent}");
    let report = &reports[0];
    assert_eq!((report.identity.org_name.as_str(), report.source.as_str()), ("Receiver Test", "smtp"), "{report:?}");
    let rows = senderauth.report_rows(report.id, "shop.example.com").await.expect("rows");
    assert_eq!(
        rows.iter().map(|row| (row.source_ip.as_str(), row.message_count, row.dkim.as_str())).collect::<Vec<_>>(),
        [("192.0.2.10", 1, "pass")]
    );

    // Removed: the authorization goes with it, and the generator keeps no report for us.
    let (status, _) = call(started.http, "DELETE", "/api/v1/domains/shop.example.com", Some(&token), None).await;
    assert_eq!(status, 204);
    // The platform's DNS drops the authorization once its follower has read the removal: wait
    // for that before the next message, which the generator would otherwise still count as
    // authorized and report (the follower takes longer on a machine busy with other tests).
    let platform_dns = direct_resolver(started.dns);
    let authorization = "shop.example.com._report._dmarc.reports.esp.example";
    let removed = Instant::now();
    while !platform_dns.txt(authorization).await.is_ok_and(|answer| answer.as_slice().is_empty()) {
        assert!(removed.elapsed() < Duration::from_secs(30), "{authorization} is still served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = Instant::now();
    let decided = loop {
        let said = perl("perl", &["evaluate.pl"]).await;
        if said.contains("authorized=0") || waited.elapsed() > Duration::from_secs(5) {
            break said;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(decided.contains("authorized=0"), "{decided}");
    close_period();
    perl("dmarc_send_reports", &[]).await;
    assert_eq!(senderauth.reports_about("shop.example.com", 10).await.expect("read").len(), 1, "nothing more came");

    let (status, stderr) = stop_service(started.child).await;
    assert!(status.success(), "{stderr}");
}
