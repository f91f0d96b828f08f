//! End-to-end tests: the real client against the spawned simulator over
//! loopback HTTP.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use crate::alpaca::sim::{SimOptions, Simulator, spawn};
use crate::alpaca::{
    AlpacaError, ApiKeys, Client, ClientConfig, Environment, OrderClass, OrderRequest,
    OrderStatusFilter, OrderType, Side, TimeInForce,
};

const SECRET: &str = "sim/secret+value_0123456789=";

pub(super) fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

pub(super) fn keys(key_id: &str) -> ApiKeys {
    ApiKeys::new(key_id, SECRET)
}

pub(super) async fn setup_with_timeout(timeout: Duration) -> (Simulator, Client, SocketAddr) {
    let (addr, sim, _handle) = spawn(SocketAddr::from(([127, 0, 0, 1], 0)), SimOptions::default())
        .await
        .expect("spawn simulator");
    let client = Client::new(&ClientConfig {
        paper_url: Simulator::paper_url(addr),
        live_url: Simulator::live_url(addr),
        connect_timeout: Duration::from_secs(2),
        request_timeout: timeout,
    })
    .expect("client");
    (sim, client, addr)
}

pub(super) async fn setup() -> (Simulator, Client, SocketAddr) {
    setup_with_timeout(Duration::from_secs(10)).await
}

pub(super) fn market(symbol: &str, qty: &str, side: Side) -> OrderRequest {
    OrderRequest {
        symbol: symbol.to_owned(),
        qty: Some(d(qty)),
        notional: None,
        side,
        order_type: OrderType::Market,
        time_in_force: TimeInForce::Day,
        limit_price: None,
        stop_price: None,
        trail_percent: None,
        trail_price: None,
        extended_hours: false,
        client_order_id: String::new(),
        order_class: OrderClass::Simple,
        take_profit: None,
        stop_loss: None,
    }
}

#[tokio::test]
async fn same_keys_same_account_and_numbers() {
    let (_sim, client, _) = setup().await;
    let k = keys("PKALICE0000000000001");
    let a = client
        .account(Environment::Paper, &k)
        .await
        .expect("account");
    let b = client
        .account(Environment::Paper, &k)
        .await
        .expect("account");
    assert_eq!(a, b);
    assert!(a.account_number.starts_with("PA"));
    assert_eq!(a.account_number.len(), 12);
    assert_eq!(a.status, "ACTIVE");
    assert_eq!(a.currency, "USD");
    assert_eq!(a.buying_power, a.cash.map(|c| c * Decimal::TWO));
    assert_ne!(a.day_change(), Some(Decimal::ZERO));

    // A second, independent simulator derives the same account.
    let (_sim2, client2, _) = setup().await;
    let c = client2
        .account(Environment::Paper, &k)
        .await
        .expect("account");
    assert_eq!(a, c);
}

#[tokio::test]
async fn different_keys_different_accounts() {
    let (_sim, client, _) = setup().await;
    let a = client
        .account(Environment::Paper, &keys("PKALICE0000000000001"))
        .await
        .expect("alice");
    let b = client
        .account(Environment::Paper, &keys("PKBOB00000000000001X"))
        .await
        .expect("bob");
    assert_ne!(a.id, b.id);
    assert_ne!(a.account_number, b.account_number);
    assert_ne!(a.cash, b.cash);
    let pa = client
        .positions(Environment::Paper, &keys("PKALICE0000000000001"))
        .await
        .expect("positions");
    let pb = client
        .positions(Environment::Paper, &keys("PKBOB00000000000001X"))
        .await
        .expect("positions");
    assert_ne!(pa, pb);

    let live = client
        .account(Environment::Live, &keys("AKALICE0000000000001"))
        .await
        .expect("live");
    assert!(live.account_number.starts_with("LA"));
}

#[tokio::test]
async fn rotating_last_four_keeps_account() {
    let (_sim, client, _) = setup().await;
    let old = keys("PKCAROL0000000000001");
    let new = keys("PKCAROL000000000ZZ99");
    // State changes made with the old key are visible with the new one.
    client
        .place_order(Environment::Paper, &old, &market("AAPL", "1", Side::Buy))
        .await
        .expect("order");
    let a = client.account(Environment::Paper, &old).await.expect("old");
    let b = client.account(Environment::Paper, &new).await.expect("new");
    assert_eq!(a, b);
    let orders = client
        .orders(Environment::Paper, &new, OrderStatusFilter::All, 10)
        .await
        .expect("orders");
    assert_eq!(orders.len(), 1);
}

#[tokio::test]
async fn wrong_side_is_rejected() {
    let (_sim, client, _) = setup().await;
    let paper = keys("PKALICE0000000000001");
    let err = client
        .account(Environment::Live, &paper)
        .await
        .expect_err("paper key on live");
    assert!(matches!(err, AlpacaError::Rejected), "{err:?}");
    let live = keys("AKALICE0000000000001");
    let err = client
        .positions(Environment::Paper, &live)
        .await
        .expect_err("live key on paper");
    assert!(matches!(err, AlpacaError::Rejected));
    assert_eq!(err.user_message(), "Alpaca rejected these keys");
}

#[tokio::test]
async fn malformed_keys_are_rejected() {
    let (_sim, client, _) = setup().await;
    for k in [
        ApiKeys::new("PKSHORT", SECRET),
        ApiKeys::new("PKALICE0000000000001", "short"),
        ApiKeys::new("PKALICE00000000000!1", SECRET),
        ApiKeys::new("PKALICE0000000000001", "bad\nsecret value with newline"),
    ] {
        let err = client
            .account(Environment::Paper, &k)
            .await
            .expect_err("malformed");
        assert!(matches!(err, AlpacaError::Rejected), "{err:?}");
    }
}

#[tokio::test]
async fn fault_keys_map_to_errors() {
    let (_sim, client, _) = setup().await;
    let env = Environment::Paper;
    let err = client.account(env, &keys("PKFAULT0000000000401")).await;
    assert!(matches!(err, Err(AlpacaError::Rejected)), "{err:?}");
    let err = client.account(env, &keys("PKFAULT0000000000403")).await;
    assert!(matches!(err, Err(AlpacaError::Rejected)), "{err:?}");
    let err = client
        .place_order(
            env,
            &keys("PKFAULT0000000000403"),
            &market("AAPL", "1", Side::Buy),
        )
        .await;
    assert!(
        matches!(err, Err(AlpacaError::Refused(ref m)) if m == "forbidden"),
        "{err:?}"
    );
    let err = client.positions(env, &keys("PKFAULT0000000000429")).await;
    assert!(matches!(err, Err(AlpacaError::RateLimited)), "{err:?}");
    let err = client
        .orders(
            env,
            &keys("PKFAULT0000000000500"),
            OrderStatusFilter::Open,
            5,
        )
        .await;
    assert!(matches!(err, Err(AlpacaError::Unavailable(_))), "{err:?}");
    let err = client
        .portfolio_history(env, &keys("AKFAULT0000000000429"), "1W", "1D")
        .await;
    // Live key on the paper side: auth fails before the fault applies.
    assert!(matches!(err, Err(AlpacaError::Rejected)), "{err:?}");
}

#[tokio::test]
async fn hang_times_out_quickly() {
    let (_sim, client, _) = setup_with_timeout(Duration::from_millis(300)).await;
    let started = Instant::now();
    let err = client
        .account(Environment::Paper, &keys("PKFAULT00000000HANG"))
        .await
        .expect_err("hang");
    assert!(matches!(err, AlpacaError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.user_message(), "Alpaca is unavailable right now");
}

#[tokio::test]
async fn slow_answers_after_two_seconds() {
    let (_sim, client, _) = setup().await;
    let started = Instant::now();
    client
        .account(Environment::Paper, &keys("PKFAULT00000000SLOW"))
        .await
        .expect("slow but fine");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    // Bind then drop a listener to get a port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = Client::new(&ClientConfig {
        paper_url: format!("http://{addr}"),
        live_url: format!("http://{addr}"),
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
    })
    .expect("client");
    let err = client
        .account(Environment::Paper, &keys("PKALICE0000000000001"))
        .await
        .expect_err("refused");
    assert!(matches!(err, AlpacaError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_success_body_of_the_wrong_shape_is_unreadable() {
    // The fallback answers 404 JSON, so aim a "base URL" at a path whose
    // success body is not an Account: positions (an array).
    let (_sim, _client, addr) = setup().await;
    let odd = Client::new(&ClientConfig {
        paper_url: format!("{}/v2/positions?x=", Simulator::paper_url(addr)),
        ..ClientConfig::default()
    })
    .expect("client");
    let err = odd
        .account(Environment::Paper, &keys("PKALICE0000000000001"))
        .await
        .expect_err("undecodable");
    assert!(matches!(err, AlpacaError::Unreadable(_)), "{err:?}");
}

#[tokio::test]
async fn equity_is_cash_plus_market_value_exactly() {
    let (_sim, client, _) = setup().await;
    for id in [
        "PKALICE0000000000001",
        "PKBOB00000000000001X",
        "AKDAVE00000000000001",
    ] {
        let env = if id.starts_with("PK") {
            Environment::Paper
        } else {
            Environment::Live
        };
        let k = keys(id);
        let account = client.account(env, &k).await.expect("account");
        let positions = client.positions(env, &k).await.expect("positions");
        assert!((2..=5).contains(&positions.len()));
        let mv: Decimal = positions.iter().filter_map(|p| p.market_value).sum();
        assert_eq!(account.equity(), account.cash.map(|c| c + mv));
        assert_eq!(account.portfolio_value, account.equity);
        for p in &positions {
            let (qty, price, value) = (
                p.qty.expect("qty"),
                p.current_price.expect("price"),
                p.market_value.expect("value"),
            );
            assert_eq!(value, qty * price);
            assert_eq!(p.unrealized_pl, Some(value - p.cost_basis.expect("cost")));
            assert_eq!(Some(price), crate::alpaca::sim::price(&p.symbol));
            assert_eq!(p.side, "long");
            assert_eq!(value.scale(), 2);
        }
    }
}

#[tokio::test]
async fn market_order_fills_and_moves_cash_and_positions() {
    let (sim, client, _) = setup().await;
    let env = Environment::Paper;
    let k = keys("PKERIN00000000000001");
    let before = client.account(env, &k).await.expect("account");
    let held_before = sim
        .account("PKERIN00000000000001")
        .expect("state")
        .qty_held("AMD");

    let order = client
        .place_order(env, &k, &market("AMD", "3", Side::Buy))
        .await
        .expect("buy");
    let price = crate::alpaca::sim::price("AMD").expect("price");
    assert_eq!(order.status, "filled");
    assert_eq!(order.filled_qty, Some(d("3")));
    assert_eq!(order.filled_avg_price, Some(price));
    assert!(order.filled_at.is_some());

    let after = client.account(env, &k).await.expect("account");
    assert_eq!(after.cash, before.cash.map(|c| c - price * d("3")));
    assert_eq!(after.equity, before.equity);
    let positions = client.positions(env, &k).await.expect("positions");
    let amd = positions
        .iter()
        .find(|p| p.symbol == "AMD")
        .expect("AMD held");
    assert_eq!(amd.qty, Some(held_before + d("3")));

    let recorded = sim.order_requests();
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert_eq!(r.account_number, before.account_number);
    assert_eq!(r.env, Environment::Paper);
    assert_eq!(r.status, 200);
    assert_eq!(r.symbol.as_deref(), Some("AMD"));
    assert_eq!(r.side.as_deref(), Some("buy"));
    assert_eq!(r.qty.as_deref(), Some("3"));
    assert_eq!(r.order_type.as_deref(), Some("market"));
    assert_eq!(r.time_in_force.as_deref(), Some("day"));
    assert_eq!(r.limit_price, None);

    // Selling everything removes the position.
    let total = amd.qty.expect("qty").to_string();
    client
        .place_order(env, &k, &market("AMD", &total, Side::Sell))
        .await
        .expect("sell");
    let positions = client.positions(env, &k).await.expect("positions");
    assert!(positions.iter().all(|p| p.symbol != "AMD"));
    // Selling more than held is refused.
    let err = client
        .place_order(env, &k, &market("AMD", "1", Side::Sell))
        .await
        .expect_err("oversell");
    assert!(matches!(err, AlpacaError::Refused(_)), "{err:?}");
    assert!(sim.request_count() >= 7);
}

#[tokio::test]
async fn limit_order_rests_and_cancels_once() {
    let (sim, client, _) = setup().await;
    let env = Environment::Live;
    let k = keys("AKFRANK0000000000001");
    let req = OrderRequest {
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        limit_price: Some(d("400.50")),
        ..market("MSFT", "2", Side::Buy)
    };
    let before = client.account(env, &k).await.expect("account");
    let order = client.place_order(env, &k, &req).await.expect("limit");
    assert_eq!(order.status, "new");
    assert_eq!(order.order_type(), Some(OrderType::Limit));
    assert_eq!(order.limit_price, Some(d("400.50")));
    assert_eq!(order.filled_avg_price, None);

    let open = client
        .orders(env, &k, OrderStatusFilter::Open, 50)
        .await
        .expect("open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, order.id);
    let after = client.account(env, &k).await.expect("account");
    assert_eq!(after.cash, before.cash);

    let recorded = sim.order_requests();
    assert_eq!(recorded[0].limit_price.as_deref(), Some("400.50"));
    assert_eq!(recorded[0].time_in_force.as_deref(), Some("gtc"));
    assert_eq!(recorded[0].order_type.as_deref(), Some("limit"));

    // Another account cannot cancel it.
    let err = client
        .cancel_order(env, &keys("AKGRACE0000000000001"), order.id.expect("id"))
        .await
        .expect_err("foreign");
    assert!(matches!(err, AlpacaError::NotFound), "{err:?}");

    let id = order.id.expect("id");
    client.cancel_order(env, &k, id).await.expect("cancel");
    let err = client
        .cancel_order(env, &k, id)
        .await
        .expect_err("cancel twice");
    assert!(matches!(err, AlpacaError::Unprocessable(_)), "{err:?}");
    let err = client
        .cancel_order(env, &k, uuid::Uuid::new_v4())
        .await
        .expect_err("unknown");
    assert!(matches!(err, AlpacaError::NotFound));

    let open = client
        .orders(env, &k, OrderStatusFilter::Open, 50)
        .await
        .expect("open");
    assert!(open.is_empty());
    let closed = client
        .orders(env, &k, OrderStatusFilter::Closed, 50)
        .await
        .expect("closed");
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].status, "canceled");
    assert!(closed[0].canceled_at.is_some());
}

#[tokio::test]
async fn orders_are_newest_first_and_limited() {
    let (_sim, client, _) = setup().await;
    let env = Environment::Paper;
    let k = keys("PKHENRY0000000000001");
    let mut ids = Vec::new();
    for symbol in ["SPY", "QQQ", "AAPL"] {
        let o = client
            .place_order(env, &k, &market(symbol, "1", Side::Buy))
            .await
            .expect("order");
        ids.push(o.id);
    }
    let all = client
        .orders(env, &k, OrderStatusFilter::All, 2)
        .await
        .expect("orders");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, ids[2]);
    assert_eq!(all[1].id, ids[1]);
}

#[tokio::test]
async fn invalid_orders_are_unprocessable() {
    let (sim, client, _) = setup().await;
    let env = Environment::Paper;
    let k = keys("PKIVAN00000000000001");
    let no_price = OrderRequest {
        order_type: OrderType::Limit,
        ..market("AAPL", "1", Side::Buy)
    };
    let err = client
        .place_order(env, &k, &no_price)
        .await
        .expect_err("limit without price");
    assert!(
        matches!(err, AlpacaError::Unprocessable(ref m) if m == "limit orders require limit_price"),
        "{err:?}"
    );
    assert_eq!(
        err.user_message(),
        "Alpaca refused the order: limit orders require limit_price"
    );

    let with_price = OrderRequest {
        limit_price: Some(d("1")),
        ..market("AAPL", "1", Side::Buy)
    };
    let err = client.place_order(env, &k, &with_price).await;
    assert!(matches!(err, Err(AlpacaError::Unprocessable(_))), "{err:?}");
    let err = client
        .place_order(env, &k, &market("aapl", "1", Side::Buy))
        .await;
    assert!(
        matches!(err, Err(AlpacaError::Unprocessable(ref m)) if m == "asset \"aapl\" not found"),
        "{err:?}"
    );
    let err = client
        .place_order(env, &k, &market("AAPL", "0", Side::Buy))
        .await;
    assert!(matches!(err, Err(AlpacaError::Unprocessable(ref m)) if m == "qty must be > 0"));
    let err = client
        .place_order(env, &k, &market("ZZZZ", "1", Side::Buy))
        .await;
    assert!(matches!(err, Err(AlpacaError::Unprocessable(_))));

    let recorded = sim.order_requests();
    assert_eq!(recorded.len(), 5);
    assert!(recorded.iter().all(|r| r.status == 422));
    assert!(
        sim.account("PKIVAN00000000000001")
            .expect("state")
            .orders
            .is_empty()
    );
}

#[tokio::test]
async fn buy_beyond_buying_power_is_refused() {
    let (sim, client, _) = setup().await;
    let env = Environment::Paper;
    let k = keys("PKJUDY00000000000001");
    let account = client.account(env, &k).await.expect("account");
    let price = crate::alpaca::sim::price("SPY").expect("price");
    let qty = (account.buying_power.expect("buying power") / price).floor() + Decimal::ONE;
    let err = client
        .place_order(env, &k, &market("SPY", &qty.to_string(), Side::Buy))
        .await
        .expect_err("too big");
    assert!(
        matches!(err, AlpacaError::Refused(ref m) if m == "insufficient buying power"),
        "{err:?}"
    );
    assert_eq!(
        err.user_message(),
        "Alpaca refused the order: insufficient buying power"
    );
    assert_eq!(sim.order_requests()[0].status, 403);
    let after = client.account(env, &k).await.expect("account");
    assert_eq!(after, account);
}

#[tokio::test]
async fn portfolio_history_ends_at_equity() {
    let (_sim, client, _) = setup().await;
    let env = Environment::Paper;
    let k = keys("PKKATE00000000000001");
    let account = client.account(env, &k).await.expect("account");
    for (period, expected) in [("1W", 5), ("1M", 21), ("3M", 63), ("1A", 249)] {
        let h = client
            .portfolio_history(env, &k, period, "1D")
            .await
            .expect("history");
        assert_eq!(h.timeframe, "1D");
        let points = h.points();
        assert_eq!(points.len(), expected, "{period}");
        let last = points.last().expect("points");
        assert_eq!(Some(last.equity), account.equity());
        assert_eq!(h.base_value, Some(points[0].equity));
        assert!(points.windows(2).all(|w| w[0].at < w[1].at));
        assert!(h.timestamp.iter().flatten().all(|t| *t < 100_000_000_000));
    }
    let again = client
        .portfolio_history(env, &k, "1M", "1D")
        .await
        .expect("history");
    let once = client
        .portfolio_history(env, &k, "1M", "1D")
        .await
        .expect("history");
    assert_eq!(again.equity, once.equity);
    let err = client.portfolio_history(env, &k, "bogus", "1D").await;
    assert!(matches!(
        err,
        Err(AlpacaError::Unavailable(_)) | Err(AlpacaError::Unprocessable(_))
    ));
}

#[tokio::test]
async fn latency_option_delays_responses() {
    let (addr, _sim, _h) = spawn(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SimOptions {
            latency: Duration::from_millis(150),
        },
    )
    .await
    .expect("spawn");
    let client = Client::new(&ClientConfig {
        paper_url: Simulator::paper_url(addr),
        live_url: Simulator::live_url(addr),
        ..ClientConfig::default()
    })
    .expect("client");
    let started = Instant::now();
    client
        .account(Environment::Paper, &keys("PKLEO000000000000001"))
        .await
        .expect("account");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

mod trading;
