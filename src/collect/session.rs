//! Reaching the accounts: the standard credential chain for the starting identity, then per
//! account a role to assume or a named profile; endpoint, retry and timeout settings; and what an
//! emulator endpoint needs (path-style S3, no account-id host prefix for S3 Control).

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3control::config::endpoint::{
    DefaultResolver, Endpoint, EndpointFuture, Params, ResolveEndpoint,
};

use crate::config::{AccountConfig, Config};
use crate::model::CallerIdentity;

use super::{Calls, CollectError, call_timeout, error_text};

/// The starting configuration shared by every account.
pub struct Session {
    base: SdkConfig,
    /// Set when calls go to a custom endpoint (emulator, private endpoint).
    endpoint_url: Option<String>,
    max_attempts: u32,
    timeout: std::time::Duration,
}

impl Session {
    /// Loads the standard chain (env, profiles, SSO, container and instance roles).
    pub async fn new(config: &Config, endpoint_url: Option<String>) -> Self {
        let endpoint_url = endpoint_url.or_else(|| {
            std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|s| !s.is_empty())
        });
        let region = config
            .regions
            .first()
            .cloned()
            .unwrap_or_else(|| "us-east-1".into());
        let max_attempts = config.collection.max_attempts.max(1);
        let timeout = call_timeout(config);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region))
            .retry_config(RetryConfig::adaptive().with_max_attempts(max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(timeout)
                    .build(),
            );
        if let Some(url) = &endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader = loader.http_client(shared_https_client());
        Self {
            base: loader.load().await,
            endpoint_url,
            max_attempts,
            timeout,
        }
    }

    /// Fails fast when the starting identity cannot authenticate; returns who it is.
    pub(crate) async fn check_starting_identity(
        &self,
        calls: &Calls,
    ) -> Result<CallerIdentity, CollectError> {
        caller_identity(&self.base, calls)
            .await
            .map_err(CollectError::Credentials)
    }

    /// The configuration for one account: its role assumed from the starting identity, or its
    /// profile, or the starting identity itself.
    pub(crate) async fn account_config(
        &self,
        account: &AccountConfig,
        calls: &Calls,
    ) -> Result<SdkConfig, String> {
        if let Some(role_arn) = &account.assume_role {
            let mut builder = aws_config::sts::AssumeRoleProvider::builder(role_arn)
                .session_name(
                    account
                        .session_name
                        .clone()
                        .unwrap_or_else(|| "xscan".into()),
                )
                .configure(&self.base);
            if let Some(external_id) = &account.external_id {
                builder = builder.external_id(external_id);
            }
            let provider = builder.build().await;
            // Resolve once now so a refused AssumeRole is reported for this account; the
            // clients then start from these credentials instead of assuming the role again.
            let first = self
                .assume_with_backoff(&provider, calls)
                .await
                .map_err(|e| {
                    format!(
                        "cannot assume {role_arn}: {}",
                        aws_sdk_sts::error::DisplayErrorContext(&e)
                    )
                })?;
            return Ok(self
                .base
                .to_builder()
                // Its own cache: the shared one keeps 64 providers' credentials, and past 64
                // accounts every service client would assume the role again (8 AssumeRole
                // calls per account, throttled in the starting account).
                .identity_cache(aws_config::identity::IdentityCache::lazy().build())
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(ResolvedFirst {
                        first: std::sync::Mutex::new(Some(first)),
                        provider,
                    }),
                )
                .build());
        }
        if let Some(profile) = &account.profile {
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .profile_name(profile)
                .region(self.base.region().cloned())
                .retry_config(RetryConfig::adaptive().with_max_attempts(self.max_attempts))
                .timeout_config(
                    TimeoutConfig::builder()
                        .operation_attempt_timeout(self.timeout)
                        .build(),
                );
            if let Some(url) = &self.endpoint_url {
                loader = loader.endpoint_url(url);
            }
            if let Some(client) = self.base.http_client() {
                loader = loader.http_client(client);
            }
            return Ok(loader.load().await);
        }
        Ok(self.base.clone())
    }

    /// Resolves an assumed role's first credentials. Every account's AssumeRole is made by the
    /// starting identity, in its one account: at a thousand accounts those calls outrun STS's
    /// rate, and the SDK's retry quota, which all of them share, is spent after about a hundred
    /// throttled retries. A throttled or transient failure is therefore tried again here, after
    /// a growing, jittered pause, up to `max_attempts` times (the account's deadline bounds the
    /// wait); a refusal is not.
    async fn assume_with_backoff(
        &self,
        provider: &aws_config::sts::AssumeRoleProvider,
        calls: &Calls,
    ) -> Result<
        aws_credential_types::Credentials,
        aws_credential_types::provider::error::CredentialsError,
    > {
        use aws_credential_types::provider::ProvideCredentials;
        let mut attempt = 0;
        loop {
            calls.count_assume_role();
            match provider.provide_credentials().await {
                Ok(credentials) => return Ok(credentials),
                Err(e) if attempt + 1 < self.max_attempts && worth_retrying(&e) => {
                    attempt += 1;
                    let ceiling = std::time::Duration::from_millis(500)
                        .saturating_mul(1 << attempt.min(6))
                        .min(std::time::Duration::from_secs(20));
                    // Half to all of the ceiling, so the accounts refused together spread out.
                    let spread = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|t| t.subsec_nanos())
                        .unwrap_or(0) as f64
                        / 1e9;
                    tokio::time::sleep(ceiling.mul_f64(0.5 + spread / 2.0)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The account's configuration in another region.
    pub(crate) fn regional(&self, sdk: &SdkConfig, region: &str) -> SdkConfig {
        sdk.to_builder()
            .region(Region::new(region.to_string()))
            .build()
    }

    /// An S3 client: path-style addressing for custom endpoints (`bucket.127.0.0.1` does not
    /// resolve).
    pub(crate) fn s3(&self, sdk: &SdkConfig, calls: &Calls) -> aws_sdk_s3::Client {
        let mut builder = super::client_config!(aws_sdk_s3, sdk, calls, "s3");
        if self.endpoint_url.is_some() {
            builder = builder.force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }

    /// An S3 Control client: with a custom endpoint, without the `{AccountId}.` host label
    /// (real AWS keeps the default resolver; PrivateLink endpoints need the prefix).
    pub(crate) fn s3control(&self, sdk: &SdkConfig, calls: &Calls) -> aws_sdk_s3control::Client {
        let mut builder = super::client_config!(aws_sdk_s3control, sdk, calls, "s3control");
        if self.endpoint_url.is_some() {
            builder = builder.endpoint_resolver(WithoutAccountLabel(DefaultResolver::new()));
        }
        aws_sdk_s3control::Client::from_conf(builder.build())
    }
}

/// Whether an assumed role's credentials failed for a reason that passes: throttling, a
/// timeout, a connection or a server error (not a refusal, not a missing role).
fn worth_retrying(error: &aws_credential_types::provider::error::CredentialsError) -> bool {
    use aws_credential_types::provider::error::CredentialsError;
    use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    if matches!(error, CredentialsError::ProviderTimedOut(_)) {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(sdk) = cause
            .downcast_ref::<SdkError<AssumeRoleError, aws_sdk_sts::config::http::HttpResponse>>()
        {
            return match sdk {
                SdkError::TimeoutError(_)
                | SdkError::DispatchFailure(_)
                | SdkError::ResponseError(_) => true,
                SdkError::ServiceError(service) => {
                    let status = service.raw().status();
                    status.is_server_error()
                        || status.as_u16() == 429
                        || sdk
                            .code()
                            .is_some_and(|code| super::THROTTLING_CODES.contains(&code))
                }
                _ => false,
            };
        }
        source = cause.source();
    }
    false
}

/// The HTTPS client every account's service clients share, built as the SDK builds its default
/// one (rustls with aws-lc, the proxy settings from the environment). Left to itself the SDK
/// makes one per service client: its own connection pool and its own copy of the system's root
/// certificates, for every account: at 1,000 accounts, 590 MB more and no connection reused.
fn shared_https_client() -> aws_sdk_sts::config::SharedHttpClient {
    use aws_smithy_http_client::{ConnectorBuilder, proxy::ProxyConfig, tls};
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// An assumed role's provider that hands out the credentials resolved up front once (the
/// SDK's identity cache keeps them until they near expiry), then asks the provider again.
#[derive(Debug)]
struct ResolvedFirst {
    first: std::sync::Mutex<Option<aws_credential_types::Credentials>>,
    provider: aws_config::sts::AssumeRoleProvider,
}

impl aws_credential_types::provider::ProvideCredentials for ResolvedFirst {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let first = self.first.lock().ok().and_then(|mut first| first.take());
        match first {
            Some(credentials) => {
                aws_credential_types::provider::future::ProvideCredentials::ready(Ok(credentials))
            }
            None => self.provider.provide_credentials(),
        }
    }
}

/// Resolves as the SDK does, then drops the leading `{AccountId}.` label from the host.
#[derive(Debug)]
struct WithoutAccountLabel(DefaultResolver);

impl ResolveEndpoint for WithoutAccountLabel {
    fn resolve_endpoint<'a>(&'a self, params: &'a Params) -> EndpointFuture<'a> {
        let inner = self.0.resolve_endpoint(params);
        let account = params.account_id().map(|a| format!("{a}."));
        EndpointFuture::new(async move {
            let endpoint = inner.await?;
            let Some(label) = account else {
                return Ok(endpoint);
            };
            let url = endpoint.url().replacen(&format!("://{label}"), "://", 1);
            let mut builder = Endpoint::builder().url(url);
            for (key, value) in endpoint.properties() {
                builder = builder.property(key.clone(), value.clone());
            }
            for (name, values) in endpoint.headers() {
                for value in values {
                    builder = builder.header(name.to_string(), value.to_string());
                }
            }
            Ok(builder.build())
        })
    }
}

/// sts:GetCallerIdentity with `sdk`.
pub(crate) async fn caller_identity(
    sdk: &SdkConfig,
    calls: &Calls,
) -> Result<CallerIdentity, String> {
    let client = aws_sdk_sts::Client::from_conf(
        super::client_config!(aws_sdk_sts, sdk, calls, "sts").build(),
    );
    let output = calls
        .run("sts:GetCallerIdentity", client.get_caller_identity().send())
        .await
        .map_err(|e| error_text(&e))?;
    Ok(CallerIdentity {
        arn: output.arn().unwrap_or_default().to_string(),
        user_id: output.user_id().map(str::to_string),
    })
}
