//! RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second on every core, per implementation: ring
//! (what the gateway signs with), aws-lc-rs, and the openssl crate over the system's libssl. One
//! key (made by OpenSSL) for all; a 1 KB message; `rsa-speed SECONDS`.
use std::time::{Duration, Instant};

fn rate(threads: usize, seconds: u64, sign: impl Fn(&[u8]) + Sync) -> f64 {
    let message = vec![7u8; 1024];
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let sign = &sign;
                let message = &message;
                scope.spawn(move || {
                    let end = Instant::now() + Duration::from_secs(seconds);
                    let mut count = 0;
                    while Instant::now() < end {
                        sign(message);
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    counts.iter().sum::<u64>() as f64 / seconds as f64
}

fn main() {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    // One key for all: made by OpenSSL, as PKCS#8 DER.
    let key = openssl::rsa::Rsa::generate(2048).unwrap();
    let pkey = openssl::pkey::PKey::from_rsa(key).unwrap();
    let pkcs8 = pkey.private_key_to_pkcs8().unwrap();

    let ring_key = ring::signature::RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
    let ring_rng = ring::rand::SystemRandom::new();
    let ring_rate = rate(threads, seconds, |message| {
        let mut signature = vec![0; ring_key.public().modulus_len()];
        ring_key.sign(&ring::signature::RSA_PKCS1_SHA256, &ring_rng, message, &mut signature).unwrap();
    });
    println!("ring               {ring_rate:.0}");

    let aws_key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
    let aws_rng = aws_lc_rs::rand::SystemRandom::new();
    let aws_rate = rate(threads, seconds, |message| {
        let mut signature = vec![0; aws_key.public_modulus_len()];
        aws_key.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &aws_rng, message, &mut signature).unwrap();
    });
    println!("aws-lc-rs          {aws_rate:.0}");

    let openssl_rate = rate(threads, seconds, |message| {
        let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
        signer.update(message).unwrap();
        signer.sign_to_vec().unwrap();
    });
    println!("openssl crate      {openssl_rate:.0}");
}
