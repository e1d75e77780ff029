use clap::Parser;
use hookline::configuration::{Cli, Command};
use hookline::startup::Application;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hookline::telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, the cause chain joined (`{:#}`): what failed and why, never a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: hookline::configuration::ServeArgs) -> anyhow::Result<()> {
    let app = Application::build(args).await?;
    if let Some(token) = &app.generated_admin_token {
        // Printed, not logged: it must not end up in log aggregation, and it is shown once.
        println!(
            "\nNo admin token was configured, so hookline generated one. It is shown only this once\n\
             (only its hash is stored); keep it somewhere safe:\n\n    {token}\n\n\
             Send it with every /api request as the header `Authorization: Bearer {token}`.\n\
             To choose your own token instead, start with --admin-token or HOOKLINE_ADMIN_TOKEN.\n"
        );
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    app.run_until_stopped(shutdown).await
}

/// Cancels `shutdown` on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: no new requests or claims; finishing in-flight deliveries");
    shutdown.cancel();
}
