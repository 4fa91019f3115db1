"""Redaction corpus: (kind, text, secret) positives and texts that must come through unchanged.

Secrets are assembled from pieces so this file does not itself look like a leaked credential to
secret scanners; the values are fake.
"""

from __future__ import annotations

A36 = "A1b2C3d4E5" * 3 + "F6g7H8"  # 36 alphanumerics
HEX32 = "0123456789abcdef" * 2
B64_40 = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_BODY = "MIIEowIBAAKCAQEA7bq9mXh0aR1f\nq3Vw8mFzJ0pQxYw2+/abcdEFGH==\n"
AKIA = "AKIA" + "IOSFODNN7EXAMPLE"
XOXB = "xox" + "b-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"

# (kind, text, secret that must not survive)
POSITIVE: list[tuple[str, str, str]] = [
    ("aws-access-key-id", f"AWS_ACCESS_KEY_ID={AKIA}", AKIA),
    ("aws-access-key-id", f'"AccessKeyId": "ASIA{"Y34FZKBOKMUTVV7A"}",', "ASIAY34FZKBOKMUTVV7A"),
    ("aws-access-key-id", "role AROA" + "XXXXXXXXXXXXXXXX in use", "AROA" + "XXXXXXXXXXXXXXXX"),
    ("aws-secret-access-key", f"AWS_SECRET_ACCESS_KEY={B64_40}", B64_40),
    ("aws-secret-access-key", f'"SecretAccessKey": "{B64_40}"', B64_40),
    ("aws-secret-access-key", f"aws_secret_access_key = {B64_40}", B64_40),
    ("aws-secret-access-key", f"aws_secret: {B64_40}", B64_40),
    ("aws-session-token", "AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEJr" + "a" * 120, "IQoJb3JpZ2luX2VjEJr" + "a" * 120),
    ("aws-session-token", '"SessionToken": "FwoGZXIvYXdzE' + "B" * 80 + '"', "FwoGZXIvYXdzE" + "B" * 80),
    ("aws-session-token", "X-Amz-Security-Token=" + "c%2F" * 20, "c%2F" * 20),
    ("slack-bot-token", f"SLACK_BOT_TOKEN={XOXB}", XOXB),
    ("slack-user-token", "xox" + "p-1234-5678-9012-abcdef0123456789", "xox" + "p-1234-5678-9012-abcdef0123456789"),
    ("slack-token", "legacy xox" + "s-0123456789-abcdefghij", "xox" + "s-0123456789-abcdefghij"),
    ("slack-token", "refresh xox" + "e.xoxp-1-Mi0yLTEyMzQ1Njc4", "xox" + "e.xoxp-1-Mi0yLTEyMzQ1Njc4"),
    ("slack-app-token", "SLACK_APP_TOKEN=xap" + "p-1-A0123456789-0123456789012-" + HEX32, HEX32),
    ("slack-webhook", "POST https://hooks.slack.com/services/T0000/B0000/" + "XXXXXXXXXXXXXXXXXXXXXXXX",
     "XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("github-token", "GITHUB_TOKEN=gh" + "p_" + A36, "ghp_" + A36),
    ("github-token", "gh" + "s_" + A36 + " in use", "ghs_" + A36),
    ("github-fine-grained-pat", "github_pat_" + "11ABCDEFG0" + "x" * 72, "11ABCDEFG0" + "x" * 72),
    ("gitlab-token", "token glpat-" + "abcdefghij0123456789", "glpat-abcdefghij0123456789"),
    ("gitlab-token", "runner GR1348941" + "abcdefghij0123456789", "GR1348941abcdefghij0123456789"),
    ("npm-token", "//registry.npmjs.org/:_authToken=npm_" + A36, "npm_" + A36),
    ("pypi-token", "password = pypi-AgEIcHlwaS5vcmc" + "C" * 60, "pypi-AgEIcHlwaS5vcmc" + "C" * 60),
    ("docker-hub-token", "dckr_pat_" + "abcdefghijklmnopqrstuvwxyz1", "dckr_pat_abcdefghijklmnopqrstuvwxyz1"),
    ("huggingface-token", "HF_TOKEN hf_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"),
    ("google-api-key", "key=AIza" + "SyD-abcdefghijklmnopqrstuvwxyz01234", "AIzaSyD-abcdefghijklmnopqrstuvwxyz01234"),
    ("google-oauth-secret", "client secret GOCSPX-" + "abcdefghijklmnopqrstuvwxyz01", "GOCSPX-abcdefghijklmnopqrstuvwxyz01"),
    ("google-oauth-token", "access ya29." + "a0AfH6SMBx-abcdefghijklmnop", "ya29.a0AfH6SMBx-abcdefghijklmnop"),
    ("stripe-key", "STRIPE_KEY sk_" + "live_" + "51HabcdefghijklmnopQRSTUV", "sk_live_51HabcdefghijklmnopQRSTUV"),
    ("stripe-key", "restricted rk_" + "live_" + "51HabcdefghijklmnopQRSTUV", "rk_live_51HabcdefghijklmnopQRSTUV"),
    ("stripe-webhook-secret", "whsec_" + "abcdefghijklmnopqrstuvwxyz012345", "whsec_abcdefghijklmnopqrstuvwxyz012345"),
    ("twilio-api-key", "TWILIO key SK" + HEX32, "SK" + HEX32),
    ("sendgrid-api-key", "SG." + "abcdefghijklmnopqrstuv" + "." + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
     "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
    ("anthropic-api-key", "sk-ant-" + "api03-" + "a" * 90, "a" * 90),
    ("openai-api-key", "OPENAI sk-" + "proj-" + "Ab1" * 20, "Ab1" * 20),
    ("vault-token", "VAULT_TOKEN hvs." + "CAESIabcdefghijklmnopqrstuvwxyz", "hvs.CAESIabcdefghijklmnopqrstuvwxyz"),
    ("digitalocean-token", "dop_v1_" + "ab" * 32, "dop_v1_" + "ab" * 32),
    ("age-secret-key", "AGE-SECRET-KEY-1" + "QQ" * 29, "AGE-SECRET-KEY-1" + "QQ" * 29),
    ("shopify-token", "shpat_" + HEX32, "shpat_" + HEX32),
    ("databricks-token", "token dapi" + HEX32, "dapi" + HEX32),
    ("azure-storage-key",
     "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + "Ab1+" * 21 + "Ab==;EndpointSuffix=core",
     "Ab1+" * 21),
    ("azure-shared-access-key",
     "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=" + "Zx9/" * 10 + "=",
     "Zx9/" * 10),
    ("azure-sas-token", "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sr=b&sig=" + "AbC%2Bd" * 6,
     "AbC%2Bd" * 6),
    ("authorization-header", "Authorization: token " + "0123456789abcdef0123", "0123456789abcdef0123"),
    ("authorization-header", "> Authorization: AWS4-HMAC-SHA256 Credential=x/2026, Signature=" + HEX32, HEX32),
    ("bearer-token", "curl -H 'Authorization: Bearer abc.def-123456'", "abc.def-123456"),
    ("bearer-token", '{"headers": {"authorization": "Bearer tok_9f8e7d6c5b"}}', "tok_9f8e7d6c5b"),
    ("bearer-token", "using bearer 0a1b2c3d4e5f6a7b8c9d", "0a1b2c3d4e5f6a7b8c9d"),
    ("basic-auth", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("jwt", f"id_token={JWT}", JWT),
    ("jwt", f"cookie session={JWT}; Path=/", JWT),
    ("docker-config-auth", '{"auths": {"registry.example.com": {"auth": "dXNlcjpwYXNzd29yZA=="}}}',
     "dXNlcjpwYXNzd29yZA=="),
    ("database-dsn", "DATABASE_URL=postgres://app:s3cr3t-pw@db.internal:5432/app", "s3cr3t-pw"),
    ("database-dsn", "mongodb+srv://admin:Pa55w0rd@cluster0.mongodb.net/test", "Pa55w0rd"),
    ("database-dsn", "redis://:r3dis-pw@cache:6379/0", "r3dis-pw"),
    ("database-dsn", "Driver={ODBC Driver 18};Server=db;UID=sa;PWD=Odbc-Secret1;", "Odbc-Secret1"),
    ("url-credentials", "git clone https://deploy:gl-deploy-pw@git.example.com/repo.git", "gl-deploy-pw"),
    ("url-credentials", "proxy http://user:p%40ss@proxy:3128", "p%40ss"),
    ("private-key", f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----", PEM_BODY),
    ("private-key", f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}-----END PRIVATE KEY-----", PEM_BODY),
    ("private-key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + PEM_BODY + "-----END ENCRYPTED PRIVATE KEY-----",
     PEM_BODY),
    ("private-key", '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n'
     '-----END PRIVATE KEY-----\\n"}', "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
    ("openssh-private-key", f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}-----END OPENSSH PRIVATE KEY-----",
     PEM_BODY),
    ("pgp-private-key", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n" + PEM_BODY
     + "=Ab12\n-----END PGP PRIVATE KEY BLOCK-----", PEM_BODY),
    # a key cut by the head/tail gap: BEGIN without END (head side) and END without BEGIN (tail side)
    ("private-key", f"log line\n-----BEGIN EC PRIVATE KEY-----\n{PEM_BODY}", PEM_BODY),
    ("private-key", f"{PEM_BODY}-----END EC PRIVATE KEY-----\nnext: line", PEM_BODY),
    ("password", "DB_PASSWORD=hunter2", "hunter2"),
    ("password", '{"user": "app", "password": "c0rrect horse"}', "c0rrect horse"),
    ("password", "password: correct horse battery staple", "correct horse battery staple"),
    ("password", "https://example.com/login?user=bob&password=s3cret&next=/", "s3cret"),
    ("password", "spring.datasource.password = 'pa55'", "pa55"),
    ("password", "DB_PASS=letmein", "letmein"),
    ("password", '{\\"password\\": \\"escaped-pw\\"}', "escaped-pw"),
    ("password", "/usr/bin/app --db-password hunter2 --verbose", "hunter2"),
    ("password", "mysqladmin --password s3cr3tpw status", "s3cr3tpw"),
    ("password", "Server=db;Database=app;User Id=sa;Password=Ado-Pw1;", "Ado-Pw1"),
    ("secret", "CLIENT_SECRET=abc123def456", "abc123def456"),
    ("secret", "secret_key_base: 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
    ("secret", "webhook secret=s-very-secret", "s-very-secret"),
    ("token", "auth_token=0123456789", "0123456789"),
    ("token", '"refresh_token": "rt-abcdef"', "rt-abcdef"),
    ("token", "X-Auth-Token: opaque-token-value", "opaque-token-value"),
    ("token", "app --token tok_abcdef --port 80", "tok_abcdef"),
    ("api-key", "DD_API_KEY=abcdef0123456789", "abcdef0123456789"),
    ("api-key", "x-api-key: k-abcdef", "k-abcdef"),
    ("api-key", "apiKey: 'k-123456'", "k-123456"),
    ("api-key", "MINIO_ACCESS_KEY=minio-admin-key", "minio-admin-key"),
]

# Texts that must come through unchanged (false-positive guard).
NEGATIVE: list[str] = [
    "commit 3f2a9c1e8d7b4a6f9e210c5d1234567890abcdef",
    "Merge: 3f2a9c1 8d7b4a6",
    "request_id=3f2a9c1e-8d7b-4a6f-9e21-0c5d12345678 status=200",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "data: SGVsbG8gV29ybGQhIFRoaXMgaXMgb3JkaW5hcnkgYmFzZTY0IHRleHQgaW4gYSBsb2cu",
    "image: 111122223333.dkr.ecr.us-east-1.amazonaws.com/web@sha256:" + "ab" * 32,
    "arn:aws:ecs:us-east-1:111122223333:task/prod/3f2a9c1e8d7b4a6f9e210c5d12345678",
    "max_tokens=100 tokens: 5 tokenizer=bpe",
    "PWD=/app OLDPWD=/ HOME=/root",
    "Password:",
    "password: null",
    'password: ""',
    "password=********",
    "password: ${DB_PASSWORD}",
    "passwordless login enabled, bypass=1",
    "the bearer of bad news; basic information about the task",
    "GET /api/v1/items?page=2 HTTP/1.1",
    "https://example.com:8443/path?q=1",
    "ftp://anonymous@ftp.example.com/pub",
    "Authorization header missing",
    "secret rotation scheduled",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host",
    "desk task disk SKETCH skill",
    "ok: 42 tasks, 0 failed, 3f2a9c1e8d7b",
    "AKIA is a prefix, AKIASHORT is too short",
    "[redacted:password] already redacted",
]
