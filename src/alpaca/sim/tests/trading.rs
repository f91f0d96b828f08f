//! The simulator's trading semantics and fault keys, through the real client.

use std::time::Duration;

use rust_decimal::Decimal;

use super::{d, keys, market, setup, setup_with_timeout};
use crate::alpaca::sim::faults::HUGE_BODY_BYTES;
use crate::alpaca::{
    AlpacaError, Environment, MAX_BODY_BYTES, OrderClass, OrderRequest, OrderStatusFilter,
    OrderType, Side, StopLoss, TakeProfit, TimeInForce,
};

const PAPER: Environment = Environment::Paper;

#[tokio::test]
async fn numbers_sent_as_strings_read_exactly_like_numbers() {
    let (_sim, client, _) = setup().await;
    let plain = keys("PKSTRINGY00000000001");
    let strings = keys("PKSTRINGY0000000STRS");
    assert_eq!(
        client.account(PAPER, &plain).await.expect("plain"),
        client.account(PAPER, &strings).await.expect("strings")
    );
    let a = client
        .portfolio_history(PAPER, &plain, "1M", "1D")
        .await
        .expect("plain");
    let b = client
        .portfolio_history(PAPER, &strings, "1M", "1D")
        .await
        .expect("strings");
    assert_eq!(a.points(), b.points());
    assert!(!b.points().is_empty());
}

#[tokio::test]
async fn a_body_that_is_not_json_is_unreadable_not_unavailable() {
    let (_sim, client, _) = setup().await;
    let err = client
        .account(PAPER, &keys("PKJUNKY000000000JUNK"))
        .await
        .expect_err("junk");
    assert!(matches!(err, AlpacaError::Unreadable(_)), "{err:?}");
    assert_eq!(
        err.user_message(),
        "Alpaca sent a response Paddock could not read"
    );
}

#[tokio::test]
async fn the_client_stops_reading_a_huge_body_at_the_cap() {
    let (sim, client, _) = setup().await;
    let err = client
        .positions(PAPER, &keys("PKHUGEBODY000000HUGE"))
        .await
        .expect_err("huge");
    assert!(matches!(err, AlpacaError::Unreadable(_)), "{err:?}");
    // The simulator produces the body as the network takes it: what it handed
    // over is what Paddock read plus what the socket buffers held.
    let streamed = sim.bytes_streamed();
    assert!(streamed >= MAX_BODY_BYTES as u64, "{streamed}");
    assert!(
        streamed < HUGE_BODY_BYTES / 8,
        "Paddock kept reading: {streamed} bytes"
    );
}

#[tokio::test]
async fn a_reused_client_order_id_is_refused_and_the_first_order_can_be_looked_up() {
    let (sim, client, _) = setup().await;
    let k = keys("PKDUPLICATE000000001");
    let order = OrderRequest {
        client_order_id: "pdk-once".into(),
        ..market("AAPL", "1", Side::Buy)
    };
    let first = client.place_order(PAPER, &k, &order).await.expect("first");
    let err = client
        .place_order(PAPER, &k, &order)
        .await
        .expect_err("second");
    assert!(
        matches!(err, AlpacaError::Unprocessable(ref m) if m == "client_order_id must be unique"),
        "{err:?}"
    );
    let found = client
        .order_by_client_id(PAPER, &k, "pdk-once")
        .await
        .expect("found");
    assert_eq!(found.id, first.id);
    let missing = client.order_by_client_id(PAPER, &k, "pdk-never").await;
    assert!(matches!(missing, Err(AlpacaError::NotFound)), "{missing:?}");
    assert_eq!(
        sim.account("PKDUPLICATE000000001")
            .expect("state")
            .orders
            .len(),
        1
    );
}

#[tokio::test]
async fn a_lost_answer_still_places_the_order() {
    let (sim, client, _) = setup_with_timeout(Duration::from_millis(400)).await;
    let k = keys("PKLOSTANSWER000LOST");
    let order = OrderRequest {
        client_order_id: "pdk-lost".into(),
        ..market("SPY", "1", Side::Buy)
    };
    let err = client
        .place_order(PAPER, &k, &order)
        .await
        .expect_err("timeout");
    assert!(matches!(err, AlpacaError::Unavailable(_)), "{err:?}");
    let found = client
        .order_by_client_id(PAPER, &k, "pdk-lost")
        .await
        .expect("placed anyway");
    assert_eq!(found.status, "filled");
    assert_eq!(sim.order_requests().len(), 1);
}

#[tokio::test]
async fn stop_orders_rest_until_the_price_reaches_them() {
    let (sim, client, _) = setup().await;
    let k = keys("PKSTOPPER00000000001");
    let buy_stop = OrderRequest {
        order_type: OrderType::Stop,
        stop_price: Some(d("240")),
        time_in_force: TimeInForce::Gtc,
        ..market("AAPL", "2", Side::Buy)
    };
    let placed = client
        .place_order(PAPER, &k, &buy_stop)
        .await
        .expect("stop");
    assert_eq!(placed.status, "new");
    let stop_limit = OrderRequest {
        order_type: OrderType::StopLimit,
        stop_price: Some(d("250")),
        limit_price: Some(d("251")),
        ..buy_stop.clone()
    };
    client
        .place_order(PAPER, &k, &stop_limit)
        .await
        .expect("stop limit");
    sim.set_price("AAPL", d("239.99"));
    let open = client
        .orders(PAPER, &k, OrderStatusFilter::Open, 10)
        .await
        .expect("open");
    assert_eq!(open.len(), 2, "nothing reached yet");
    sim.set_price("AAPL", d("245"));
    let open = client
        .orders(PAPER, &k, OrderStatusFilter::Open, 10)
        .await
        .expect("open");
    assert_eq!(open.len(), 1, "the stop filled");
    let closed = client
        .orders(PAPER, &k, OrderStatusFilter::Closed, 10)
        .await
        .expect("closed");
    assert_eq!(closed[0].filled_avg_price, Some(d("245")));
    sim.set_price("AAPL", d("252"));
    let open = client
        .orders(PAPER, &k, OrderStatusFilter::Open, 10)
        .await
        .expect("open");
    assert_eq!(open.len(), 1, "elected, but above its limit");
    sim.set_price("AAPL", d("250.50"));
    let open = client
        .orders(PAPER, &k, OrderStatusFilter::Open, 10)
        .await
        .expect("open");
    assert!(open.is_empty(), "the stop limit filled within its limit");
}

#[tokio::test]
async fn a_trailing_stop_follows_the_best_price_then_sells() {
    let (sim, client, _) = setup().await;
    let k = keys("PKTRAILER00000000001");
    let held = sim
        .account("PKTRAILER00000000001")
        .expect("state")
        .positions[0]
        .clone();
    let trailing = OrderRequest {
        order_type: OrderType::TrailingStop,
        trail_price: Some(d("10")),
        ..market(&held.symbol, "1", Side::Sell)
    };
    let start = crate::alpaca::sim::price(&held.symbol).expect("price");
    let placed = client
        .place_order(PAPER, &k, &trailing)
        .await
        .expect("trailing");
    assert_eq!(placed.hwm, Some(start));
    sim.set_price(&held.symbol, start + d("20"));
    let open = client
        .orders(PAPER, &k, OrderStatusFilter::Open, 10)
        .await
        .expect("open");
    assert_eq!(open[0].hwm, Some(start + d("20")));
    assert_eq!(open[0].stop_price, Some(start + d("10")));
    sim.set_price(&held.symbol, start + d("15"));
    assert_eq!(
        client
            .orders(PAPER, &k, OrderStatusFilter::Open, 10)
            .await
            .expect("open")
            .len(),
        1
    );
    sim.set_price(&held.symbol, start + d("9.99"));
    assert!(
        client
            .orders(PAPER, &k, OrderStatusFilter::Open, 10)
            .await
            .expect("open")
            .is_empty()
    );
}

#[tokio::test]
async fn a_bracket_holds_its_legs_until_the_entry_fills_and_one_exit_cancels_the_other() {
    let (sim, client, _) = setup().await;
    let k = keys("PKBRACKET00000000001");
    let bracket = OrderRequest {
        order_type: OrderType::Limit,
        limit_price: Some(d("100")),
        time_in_force: TimeInForce::Gtc,
        order_class: OrderClass::Bracket,
        take_profit: Some(TakeProfit {
            limit_price: d("110"),
        }),
        stop_loss: Some(StopLoss {
            stop_price: d("95"),
        }),
        ..market("NVDA", "10", Side::Buy)
    };
    let placed = client
        .place_order(PAPER, &k, &bracket)
        .await
        .expect("bracket");
    assert_eq!(placed.order_class, "bracket");
    assert_eq!(placed.legs.len(), 2);
    assert!(
        placed
            .legs
            .iter()
            .all(|l| l.status == "held" && l.side() == Some(Side::Sell))
    );
    sim.set_price("NVDA", d("99"));
    let open = client
        .orders(PAPER, &k, OrderStatusFilter::Open, 10)
        .await
        .expect("open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].status, "filled");
    assert!(open[0].legs.iter().all(|l| l.status == "new"));
    sim.set_price("NVDA", d("111"));
    let all = client
        .orders(PAPER, &k, OrderStatusFilter::All, 10)
        .await
        .expect("all");
    let legs = &all[0].legs;
    assert_eq!(legs[0].status, "filled", "take profit");
    assert_eq!(legs[1].status, "canceled", "stop loss");
    assert!(
        client
            .orders(PAPER, &k, OrderStatusFilter::Open, 10)
            .await
            .expect("open")
            .is_empty()
    );
}

#[tokio::test]
async fn dollar_amounts_and_fractions_fill_only_where_allowed() {
    let (sim, client, _) = setup().await;
    let k = keys("PKFRACTIONS000000001");
    let notional = OrderRequest {
        qty: None,
        notional: Some(d("1000")),
        ..market("AAPL", "1", Side::Buy)
    };
    let o = client
        .place_order(PAPER, &k, &notional)
        .await
        .expect("notional");
    assert_eq!((o.qty, o.notional), (None, Some(d("1000"))));
    let price = crate::alpaca::sim::price("AAPL").expect("price");
    let shares =
        (d("1000") / price).round_dp_with_strategy(9, rust_decimal::RoundingStrategy::ToZero);
    assert_eq!(o.filled_qty, Some(shares));
    let whole_only = client
        .place_order(PAPER, &k, &market("ACME", "1.5", Side::Buy))
        .await
        .expect_err("ACME is whole shares only");
    assert!(
        matches!(whole_only, AlpacaError::Unprocessable(ref m) if m == "requested asset is not fractionable")
    );
    let untradable = client
        .place_order(PAPER, &k, &market("LEHMQ", "1", Side::Buy))
        .await
        .expect_err("untradable");
    assert!(matches!(untradable, AlpacaError::Unprocessable(_)));
    assert_eq!(
        sim.account("PKFRACTIONS000000001")
            .expect("state")
            .orders
            .len(),
        1
    );
}

#[tokio::test]
async fn closing_positions_sells_at_market_and_cancel_all_cancels_everything() {
    let (sim, client, _) = setup().await;
    let k = keys("PKCLOSER00000000001");
    let state = sim.account("PKCLOSER00000000001").expect("state");
    let first = state.positions[0].clone();
    let part = client
        .close_position(PAPER, &k, &first.symbol, Some(d("1")))
        .await
        .expect("partial");
    assert_eq!(
        (part.side(), part.qty, part.status.as_str()),
        (Some(Side::Sell), Some(d("1")), "filled")
    );
    let rest = client
        .close_position(PAPER, &k, &first.symbol, None)
        .await
        .expect("rest");
    assert_eq!(rest.qty, Some(first.qty - d("1")));
    let gone = client.close_position(PAPER, &k, &first.symbol, None).await;
    assert!(matches!(gone, Err(AlpacaError::NotFound)), "{gone:?}");

    let resting = OrderRequest {
        order_type: OrderType::Limit,
        limit_price: Some(d("1")),
        time_in_force: TimeInForce::Gtc,
        ..market("SPY", "1", Side::Buy)
    };
    client
        .place_order(PAPER, &k, &resting)
        .await
        .expect("resting");
    client
        .place_order(PAPER, &k, &resting)
        .await
        .expect("resting");
    let canceled = client
        .cancel_all_orders(PAPER, &k)
        .await
        .expect("cancel all");
    assert_eq!(canceled.len(), 2);
    assert!(canceled.iter().all(|c| c.succeeded()));
    let again = client
        .cancel_all_orders(PAPER, &k)
        .await
        .expect("nothing left");
    assert!(again.is_empty());

    let closed = client
        .close_all_positions(PAPER, &k)
        .await
        .expect("close all");
    assert_eq!(closed.len(), state.positions.len() - 1);
    assert!(closed.iter().all(|c| c.succeeded()));
    assert!(
        client
            .positions(PAPER, &k)
            .await
            .expect("positions")
            .is_empty()
    );
}

#[tokio::test]
async fn activities_page_newest_first_and_record_every_fill_exactly() {
    let (_sim, client, _) = setup().await;
    let k = keys("PKACTIVE000000000001");
    client
        .place_order(PAPER, &k, &market("AMD", "3", Side::Buy))
        .await
        .expect("buy");
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .activities(PAPER, &k, 7, token.as_deref())
            .await
            .expect("page");
        let done = page.len() < 7;
        token = page.last().map(|a| a.id.clone());
        all.extend(page);
        if done {
            break;
        }
    }
    assert!(
        all.windows(2).all(|w| w[0].id > w[1].id),
        "newest first, no repeats"
    );
    let newest = &all[0];
    assert!(newest.is_fill());
    assert_eq!((newest.symbol.as_str(), newest.qty), ("AMD", Some(d("3"))));
    let price = crate::alpaca::sim::price("AMD").expect("price");
    assert_eq!(newest.amount(), Some(-(price * d("3"))));
    assert_eq!(all.last().map(|a| a.activity_type.as_str()), Some("CSD"));
    assert!(all.iter().any(|a| a.activity_type == "DIV") || all.len() > 3);
}

#[tokio::test]
async fn assets_are_asked_for_once_and_the_clock_answers() {
    let (sim, client, _) = setup().await;
    let k = keys("PKASSETS000000000001");
    let aapl = client.asset(PAPER, &k, "AAPL").await.expect("AAPL");
    assert!(aapl.is_tradable() && aapl.fractionable);
    client.asset(PAPER, &k, "AAPL").await.expect("again");
    assert_eq!(
        sim.calls("GET", "/v2/assets/AAPL"),
        1,
        "the second answer came from the cache"
    );
    assert!(
        !client
            .asset(PAPER, &k, "ACME")
            .await
            .expect("ACME")
            .fractionable
    );
    assert!(
        !client
            .asset(PAPER, &k, "LEHMQ")
            .await
            .expect("LEHMQ")
            .is_tradable()
    );
    assert!(matches!(
        client.asset(PAPER, &k, "ZZZZ").await,
        Err(AlpacaError::NotFound)
    ));
    let clock = client.clock(PAPER, &k).await.expect("clock");
    assert!(clock.next_open.is_some() && clock.next_close.is_some());
}

#[tokio::test]
async fn an_account_holding_an_unpriced_asset_still_reads_whole() {
    let (_sim, client, _) = setup().await;
    let k = keys("PKNOPRICEACCOUNT0001");
    let account = client.account(PAPER, &k).await.expect("account");
    let positions = client.positions(PAPER, &k).await.expect("positions");
    let lehmq = positions
        .iter()
        .find(|p| p.symbol == "LEHMQ")
        .expect("LEHMQ");
    assert_eq!(
        (lehmq.qty, lehmq.market_value, lehmq.current_price),
        (Some(d("100")), None, None)
    );
    let priced: Decimal = positions.iter().filter_map(|p| p.market_value).sum();
    assert_eq!(account.equity(), account.cash.map(|c| c + priced));
}
