-- Coupons, funded by the platform (seller_id '') or by a store, and their
-- redemptions: one row per coupon and checkout, RESERVED when the
-- checkout's orders are created (it counts against the coupon's limits
-- from then), CONSUMED when the first of them is paid, RELEASED when all
-- of them were cancelled before payment while the coupon was valid
-- (LAPSED after it ended). `used` counts the redemptions RESERVED or
-- CONSUMED; it changes only under the coupon's row lock, where the limits
-- are checked: Redis never decides a redemption.
CREATE TABLE coupons (
    id                 uuid PRIMARY KEY,
    code               text NOT NULL,
    source             text NOT NULL CHECK (source IN ('PLATFORM', 'STORE')),
    seller_id          text NOT NULL DEFAULT '',
    kind               text NOT NULL CHECK (kind IN ('AMOUNT_OFF', 'PERCENT_OFF')),
    currency           text NOT NULL,
    amount_minor       bigint NOT NULL DEFAULT 0,
    percent            bigint NOT NULL DEFAULT 0,
    cap_minor          bigint NOT NULL DEFAULT 0,
    min_subtotal_minor bigint NOT NULL DEFAULT 0,
    starts_at          timestamptz NOT NULL,
    ends_at            timestamptz NOT NULL,
    redemption_limit   bigint NOT NULL DEFAULT 0,
    per_buyer_limit    bigint NOT NULL DEFAULT 0,
    first_order_only   boolean NOT NULL DEFAULT false,
    granted_only       boolean NOT NULL DEFAULT false,
    product_ids        text[] NOT NULL DEFAULT '{}',
    seller_ids         text[] NOT NULL DEFAULT '{}',
    paused             boolean NOT NULL DEFAULT false,
    used               bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (redemption_limit = 0 OR used <= redemption_limit)
);
-- A code names one coupon of its issuer, whatever its case.
CREATE UNIQUE INDEX coupons_code_idx ON coupons (seller_id, upper(code));

-- The buyers a platform coupon was granted to ("my coupons").
CREATE TABLE coupon_grants (
    coupon_id  uuid NOT NULL REFERENCES coupons (id),
    buyer_id   text NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (coupon_id, buyer_id)
);
CREATE INDEX coupon_grants_buyer_idx ON coupon_grants (buyer_id);

CREATE TABLE coupon_redemptions (
    coupon_id    uuid NOT NULL REFERENCES coupons (id),
    checkout_id  uuid NOT NULL,
    buyer_id     text NOT NULL,
    state        text NOT NULL CHECK (state IN ('RESERVED', 'CONSUMED', 'RELEASED', 'LAPSED')),
    -- What the coupon took off the checkout, and its terms then.
    amount_minor bigint NOT NULL,
    terms        jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (coupon_id, checkout_id)
);
CREATE INDEX coupon_redemptions_buyer_idx ON coupon_redemptions (coupon_id, buyer_id) WHERE state IN ('RESERVED', 'CONSUMED');

-- Which orders of a checkout hold which coupon.
CREATE TABLE order_coupons (
    order_id    uuid NOT NULL,
    coupon_id   uuid NOT NULL,
    checkout_id uuid NOT NULL,
    PRIMARY KEY (order_id, coupon_id)
);
CREATE INDEX order_coupons_redemption_idx ON order_coupons (coupon_id, checkout_id);

-- souk_coupon_refusal says why buyer cannot redeem coupon now (NULL: it
-- can): paused, not_started, ended, exhausted, not_granted, per_buyer,
-- first_order or unknown, with a message. A checkout's preview asks it;
-- souk_redeem_coupon asks it under the coupon's row lock.
CREATE FUNCTION souk_coupon_refusal(coupon uuid, buyer text, OUT reason text, OUT message text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c coupons%ROWTYPE;
    mine bigint;
BEGIN
    SELECT * INTO c FROM coupons WHERE id = coupon;
    IF NOT FOUND THEN
        reason := 'unknown'; message := format('coupon %s does not exist', coupon);
    ELSIF c.paused THEN
        reason := 'paused'; message := format('coupon %s is paused', c.code);
    ELSIF now() < c.starts_at THEN
        reason := 'not_started'; message := format('coupon %s is valid from %s', c.code, c.starts_at);
    ELSIF now() >= c.ends_at THEN
        reason := 'ended'; message := format('coupon %s ended at %s', c.code, c.ends_at);
    ELSIF c.redemption_limit > 0 AND c.used >= c.redemption_limit THEN
        reason := 'exhausted'; message := format('coupon %s is used up', c.code);
    ELSIF c.granted_only AND NOT EXISTS (SELECT 1 FROM coupon_grants g WHERE g.coupon_id = coupon AND g.buyer_id = buyer) THEN
        reason := 'not_granted'; message := format('coupon %s was not granted to you', c.code);
    ELSIF c.first_order_only AND EXISTS (SELECT 1 FROM orders o WHERE o.buyer_id = buyer AND o.paid_attempt_id IS NOT NULL) THEN
        reason := 'first_order'; message := format('coupon %s is for a first order only', c.code);
    ELSIF c.per_buyer_limit > 0 THEN
        SELECT count(*) INTO mine FROM coupon_redemptions r
            WHERE r.coupon_id = coupon AND r.buyer_id = buyer AND r.state IN ('RESERVED', 'CONSUMED');
        IF mine >= c.per_buyer_limit THEN
            reason := 'per_buyer'; message := format('you have used coupon %s %s times already', c.code, mine);
        END IF;
    END IF;
END
$$;

-- souk_redeem_coupon reserves a coupon for a checkout in the transaction
-- that creates its orders, or raises SK002 saying why not (the reason in
-- DETAIL). The coupon's row lock orders concurrent redemptions; the
-- checks run after it, each statement seeing what those committed. A
-- checkout that already holds the coupon (a retry) redeems nothing more.
CREATE FUNCTION souk_redeem_coupon(coupon uuid, checkout uuid, buyer text, amount bigint, terms jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    refusal record;
BEGIN
    PERFORM 1 FROM coupons WHERE id = coupon FOR UPDATE;
    IF EXISTS (SELECT 1 FROM coupon_redemptions r WHERE r.coupon_id = coupon AND r.checkout_id = checkout) THEN
        RETURN;
    END IF;
    SELECT * INTO refusal FROM souk_coupon_refusal(coupon, buyer);
    IF refusal.reason IS NOT NULL THEN
        RAISE EXCEPTION '%', refusal.message USING ERRCODE = 'SK002', DETAIL = refusal.reason;
    END IF;
    INSERT INTO coupon_redemptions (coupon_id, checkout_id, buyer_id, state, amount_minor, terms)
        VALUES (coupon, checkout, buyer, 'RESERVED', amount, terms);
    UPDATE coupons SET used = used + 1 WHERE id = coupon;
END
$$;
