"""The shop's scenarios: what happens, service by service, when a customer does something.

Every scenario yields whole traces of 5 to 60 spans. Failure and slowness rates are picked
so that a few seconds of traffic already show errors, retries and outliers.
"""

from __future__ import annotations

from tracedesk.demo.catalog import (
    CARD_BRANDS,
    CARD_DECLINED,
    CARRIER,
    CARRIER_TIMEOUT,
    CARRIERS,
    CATEGORIES,
    DEADLOCK,
    MAIL_THROTTLED,
    MAILER,
    PAYMENT_PROVIDER,
    PRODUCTS,
    PROVIDER_DOWN,
    PUBLIC_HOST,
    QUERY_TIMEOUT,
    RENDER_BUG,
    SQL,
    USER_AGENTS,
    Failure,
    Product,
)
from tracedesk.demo.signals import kv, kv_new
from tracedesk.demo.spans import (
    INFO,
    INTERNAL,
    MS,
    SERVER,
    SEVERE,
    WARN,
    Handler,
    SpanBuilder,
    SpanDraft,
    TraceDraft,
)

CART_RPC = "shop.checkout.v1.CartService"
CHECKOUT_RPC = "shop.checkout.v1.CheckoutService"
PAYMENT_RPC = "shop.payments.v1.PaymentService"


def _exception_attrs(failure: Failure, **extra: str | int) -> dict[str, str | int]:
    return {"exception.type": failure.type, "exception.message": failure.message,
            "exception.stacktrace": failure.stacktrace, **extra}


class Flows(SpanBuilder):
    def scenario(self) -> list[TraceDraft]:
        """One customer action: its trace, plus the traces of any queue consumers."""
        r = self.rng.random()
        if r < 0.35:
            return self._product_page()
        if r < 0.55:
            return self._catalog()
        if r < 0.75:
            return self._add_to_cart()
        return self._checkout()

    def _user(self) -> str:
        return f"u-{self.rng.randrange(1, 400):04d}"

    def _frontend(self, t: TraceDraft, method: str, route: str, path: str, user: str,
                  handler: Handler) -> SpanDraft:
        """The storefront's server span: session lookup, then the page's own work."""
        rng = self.rng
        client_ip = f"198.51.100.{rng.randrange(1, 255)}"
        root = self.span(t, None, "frontend", "http_server", f"{method} {route}", SERVER, 0)
        session = self.redis(t, root, "frontend", "GET", f"session:{user}", self.ms(0.1, 0.5))
        end, status = handler(root, session.end + self.pause())
        root.end = end + self.ms(0.1, 0.6)
        self.server_attrs(root, method, route, path, status, PUBLIC_HOST, 443, client_ip,
                          "https", "2")
        root.attrs += [kv("user_agent.original", rng.choice(USER_AGENTS)), kv("user.id", user)]
        took = (root.end - root.start) / MS
        severity = SEVERE if status >= 500 else WARN if status >= 400 else INFO
        self.log(t, root, root.end, severity, f"{method} {path} {status} {took:.1f}ms", {
            "http.request.method": method, "http.route": route,
            "http.response.status_code": status, "user.id": user})
        return root

    # ---------------------------------------------------------------- browsing
    def _product_page(self) -> list[TraceDraft]:
        t = self.new_trace()
        missing = self.chance(0.03)
        product = self.rng.choice(PRODUCTS)
        pid = self.rng.randrange(900, 999) if missing else product.id

        def lookup(server: SpanDraft, at: int) -> tuple[int, int]:
            return self._inventory_product(t, server, at, product, pid, missing)

        def related(server: SpanDraft, at: int) -> tuple[int, int]:
            q = self.sql(t, server, "inventory", "SELECT", "related_products", SQL.RELATED, at,
                         rows=4)
            return q.end + self.pause(), 200

        def page(root: SpanDraft, at: int) -> tuple[int, int]:
            end, status = self.http(t, root, "frontend", "inventory", "GET",
                                    "/api/products/{product_id}", f"/api/products/{pid}", at,
                                    lookup)
            if status == 404:
                return self.internal(t, root, "frontend", "render not_found", end + self.pause(),
                                     self.lat(1.5), "renderNotFound").end, 404
            end, _ = self.http(t, root, "frontend", "inventory", "GET",
                               "/api/products/{product_id}/related",
                               f"/api/products/{pid}/related", end + self.pause(), related)
            render = self.internal(t, root, "frontend", "render product_page",
                                   end + self.pause(), self.lat(4, 0.4), "renderProduct",
                                   **{"app.product.id": pid, "app.template": "product_page"})
            if self.chance(0.008):
                self.fail(render, RENDER_BUG, render.end)
                self.log(t, render, render.end, SEVERE, "unhandled error while rendering",
                         _exception_attrs(RENDER_BUG))
                return render.end + self.pause(), 500
            return render.end + self.pause(), 200

        self._frontend(t, "GET", "/products/{product_id}", f"/products/{pid}", self._user(),
                       page)
        return [t]

    def _inventory_product(self, t: TraceDraft, server: SpanDraft, at: int, product: Product,
                           pid: int, missing: bool) -> tuple[int, int]:
        key = f"product:{pid}"
        at = self.redis(t, server, "inventory", "GET", key, at).end
        if missing or self.chance(0.3):
            self.event(server, at, "cache.miss", [kv("cache.key", key)])
            q = self.sql(t, server, "inventory", "SELECT", "products", SQL.PRODUCT,
                         at + self.pause(), rows=0 if missing else 1)
            if missing:
                self.log(t, server, q.end, WARN, f"product {pid} not found",
                         {"app.product.id": pid})
                return q.end + self.pause(), 404
            stock = self.sql(t, server, "inventory", "SELECT", "stock", SQL.STOCK,
                             q.end + self.pause())
            at = self.redis(t, server, "inventory", "SETEX", key, stock.end + self.pause()).end
        if self.chance(0.06):
            self.log(t, server, at, WARN, f"low stock for {product.sku}", {
                "app.product.sku": product.sku, "app.stock.quantity": self.rng.randint(1, 4)})
        return at + self.pause(), 200

    def _catalog(self) -> list[TraceDraft]:
        t = self.new_trace()
        category = self.rng.choice((*CATEGORIES, ""))
        products = [p for p in PRODUCTS if not category or p.category == category]
        query = f"category={category}" if category else "sort=popular"

        def listing(server: SpanDraft, at: int) -> tuple[int, int]:
            slow = self.chance(0.04)
            timeout = slow and self.chance(0.25)
            text = SQL.BY_CATEGORY if category else SQL.POPULAR
            took = self.ms(5000, 5002) if timeout else self.ms(600, 2500) if slow else 0
            q = self.sql(t, server, "inventory", "SELECT", "products", text, at,
                         rows=len(products), duration=took)
            if timeout:  # the database's statement_timeout is 5 s
                self.fail(q, QUERY_TIMEOUT, q.end)
                self.fail(server, QUERY_TIMEOUT, q.end + self.pause())
                self.log(t, server, q.end, SEVERE, "listing products failed",
                         _exception_attrs(QUERY_TIMEOUT, **{"app.category": category}))
                return q.end + self.ms(0.5, 2), 500
            if slow:
                self.log(t, q, q.end, WARN, "slow query", {
                    "db.query.text": text, "db.duration_ms": round(took / MS, 1)})
            at = q.end
            for _ in products:  # one stock query per product: the classic N+1
                at = self.sql(t, server, "inventory", "SELECT", "stock", SQL.STOCK,
                              at + self.pause()).end
            return at + self.pause(), 200

        def page(root: SpanDraft, at: int) -> tuple[int, int]:
            end, status = self.http(t, root, "frontend", "inventory", "GET", "/api/products",
                                    "/api/products", at, listing)
            name, template = ("render error", "error") if status >= 500 else (
                "render product_list", "product_list")
            render = self.internal(t, root, "frontend", name, end + self.pause(),
                                   self.lat(3, 0.4), "renderList", **{"app.template": template})
            return render.end + self.pause(), 502 if status >= 500 else 200

        root = self._frontend(t, "GET", "/products", "/products", self._user(), page)
        root.attrs.append(kv("url.query", query))
        return [t]

    # ---------------------------------------------------------------- buying
    def _add_to_cart(self) -> list[TraceDraft]:
        t = self.new_trace()
        p = self.rng.choice(PRODUCTS)
        user = self._user()
        cart = f"cart:{user}"

        def stock(server: SpanDraft, at: int) -> tuple[int, int]:
            q = self.sql(t, server, "inventory", "SELECT", "stock", SQL.STOCK, at)
            return q.end + self.pause(), 200

        def page(root: SpanDraft, at: int) -> tuple[int, int]:
            def add_item(server: SpanDraft, at: int) -> tuple[int, int, str]:
                at = self.redis(t, server, "checkout", "HGETALL", cart, at).end
                end, _ = self.http(t, server, "checkout", "inventory", "GET", "/api/stock/{sku}",
                                   f"/api/stock/{p.sku}", at + self.pause(), stock)
                if self.chance(0.05):
                    self.log(t, server, end, WARN, f"cannot add {p.sku} to cart: out of stock",
                             {"app.product.sku": p.sku})
                    return end + self.pause(), 9, f"insufficient stock for {p.sku}"
                at = self.redis(t, server, "checkout", "HSET", cart, end + self.pause()).end
                at = self.redis(t, server, "checkout", "EXPIRE", cart, at + self.pause()).end
                return at + self.pause(), 0, ""

            end, code, _ = self.grpc(t, root, "frontend", "checkout", CART_RPC, "AddItem", at,
                                     add_item)
            return end + self.pause(), {0: 201, 9: 409}.get(code, 502)

        self._frontend(t, "POST", "/cart/items", "/cart/items", user, page)
        return [t]

    def _checkout(self) -> list[TraceDraft]:
        t = self.new_trace()
        items = [(p, self.rng.randint(1, 3))
                 for p in self.rng.sample(PRODUCTS, self.rng.choice((1, 1, 2, 2, 3, 4, 6)))]
        order_id = self.unique("ord-")
        total = sum(p.price_cents * qty for p, qty in items)
        user = self._user()
        sent: list[SpanDraft] = []  # the span that put the order on the queue

        def page(root: SpanDraft, at: int) -> tuple[int, int]:
            end, code, detail = self.grpc(
                t, root, "frontend", "checkout", CHECKOUT_RPC, "PlaceOrder", at,
                lambda server, at: self._place_order(t, server, at, user, items, order_id,
                                                     total, sent))
            if code:
                self.log(t, root, end, WARN, f"checkout failed: {detail}",
                         {"rpc.grpc.status_code": code, "app.order.id": order_id})
                status = 402 if "declined" in detail else {9: 409, 14: 503}.get(code, 500)
                return end + self.pause(), status
            render = self.internal(t, root, "frontend", "render order_confirmation",
                                   end + self.pause(), self.lat(3, 0.4), "renderConfirmation",
                                   **{"app.template": "order_confirmation"})
            return render.end + self.pause(), 200

        self._frontend(t, "POST", "/checkout", "/checkout", user, page)
        if not sent:
            return [t]
        return [t,
                self.consume(t, sent[0], "shipping", order_id,
                             lambda ct, root, at: self._ship(ct, root, at, order_id)),
                self.consume(t, sent[0], "email", order_id,
                             lambda ct, root, at: self._email(ct, root, at, order_id))]

    def _place_order(self, t: TraceDraft, server: SpanDraft, at: int, user: str,
                     items: list[tuple[Product, int]], order_id: str, total: int,
                     sent: list[SpanDraft]) -> tuple[int, int, str]:
        cart = f"cart:{user}"
        at = self.redis(t, server, "checkout", "HGETALL", cart, at).end
        self.event(server, at, "cart.loaded", [kv("app.cart.items", len(items))])
        sold_out = self.rng.randrange(len(items)) if self.chance(0.03) else -1
        for i, (p, _qty) in enumerate(items):
            def reserve(s: SpanDraft, at: int, p: Product = p, out: bool = i == sold_out
                        ) -> tuple[int, int]:
                q = self.sql(t, s, "inventory", "UPDATE", "stock", SQL.RESERVE, at)
                if out:
                    self.log(t, s, q.end, WARN, f"reservation refused for {p.sku}: not enough "
                             "stock", {"app.product.sku": p.sku, "app.order.id": order_id})
                    return q.end + self.pause(), 409
                return q.end + self.pause(), 200

            at, status = self.http(t, server, "checkout", "inventory", "POST",
                                   "/api/stock/reservations", "/api/stock/reservations",
                                   at + self.pause(), reserve)
            if status == 409:
                return at + self.pause(), 9, f"insufficient stock for {p.sku}"
        end, code, detail = self.grpc(
            t, server, "checkout", "payments", PAYMENT_RPC, "Charge", at + self.pause(),
            lambda s, at: self._charge(t, s, at, order_id, total))
        if code:
            end, _ = self.http(
                t, server, "checkout", "inventory", "DELETE",
                "/api/stock/reservations/{order_id}", f"/api/stock/reservations/{order_id}",
                end + self.pause(),
                lambda s, at: (self.sql(t, s, "inventory", "UPDATE", "stock", SQL.RELEASE,
                                        at).end + self.pause(), 204))
            return end + self.pause(), code, detail
        insert = self.sql(t, server, "checkout", "INSERT", "orders", SQL.INSERT_ORDER,
                          end + self.pause())
        if self.chance(0.01):
            failed = insert.end + self.pause()
            self.fail(insert, DEADLOCK, insert.end)
            self.fail(server, DEADLOCK, failed, "could not store order")
            self.log(t, server, failed, SEVERE, "could not store order",
                     _exception_attrs(DEADLOCK, **{"app.order.id": order_id}))
            return failed, 13, "could not store order: deadlock detected"
        rows = self.sql(t, server, "checkout", "INSERT", "order_items", SQL.INSERT_ITEMS,
                        insert.end + self.pause())
        sent.append(self.publish(t, server, "checkout", order_id, rows.end + self.pause(),
                                 180 + 90 * len(items)))
        done = self.redis(t, server, "checkout", "DEL", cart, sent[0].end + self.pause())
        self.log(t, server, done.end, INFO, {
            "message": "order placed", "order_id": order_id, "items": len(items),
            "total": total / 100, "currency": "USD"}, {"app.order.id": order_id,
                                                      "user.id": user}, "shop.order.placed")
        self.metrics.add("checkout", "shop.orders.placed", (("currency", "USD"),))
        self.metrics.add("checkout", "shop.orders.revenue", (("currency", "USD"),), total / 100)
        return done.end + self.pause(), 0, ""

    def _charge(self, t: TraceDraft, server: SpanDraft, at: int, order_id: str, total: int
                ) -> tuple[int, int, str]:
        brand = self.rng.choice(CARD_BRANDS)
        auth = self.span(t, server, "payments", "app", "ChargeService.authorize", INTERNAL, at)
        auth.attrs = [kv("code.function.name", "com.example.shop.payments.ChargeService."
                         "authorize"), kv_new("app.order.id", order_id),
                      kv_new("app.payment.amount", total / 100), kv("app.payment.currency", "USD"),
                      kv("app.payment.card_brand", brand)]
        fraud = self.internal(t, auth, "payments", "FraudRules.evaluate", at + self.pause(),
                              self.lat(2.5), "com.example.shop.payments.FraudRules.evaluate")
        self.event(fraud, fraud.end, "fraud.rules.evaluated", [
            kv("app.fraud.rules", 14), kv_new("app.fraud.score", round(self.rng.random() / 3, 3))])
        at = fraud.end + self.pause()
        outcome = self.rng.random()
        declined, flaky = outcome < 0.05, 0.05 <= outcome < 0.1
        took = self.ms(2000, 5000) if self.chance(0.03) else self.lat(180, 0.35)
        if flaky:  # the provider hiccups; one retry after a short backoff
            first = self.external(t, auth, "payments", PAYMENT_PROVIDER, "POST", "/v1/charges",
                                  at, self.lat(60, 0.3), 503)
            self.log(t, auth, first.end, WARN, "payflow returned 503, retrying in 200ms",
                     {"app.order.id": order_id, "http.response.status_code": 503})
            gave_up = self.chance(0.35)
            call = self.external(t, auth, "payments", PAYMENT_PROVIDER, "POST", "/v1/charges",
                                 first.end + self.ms(190, 230),
                                 self.lat(60, 0.3) if gave_up else took,
                                 503 if gave_up else 200, resend=1)
            if gave_up:
                auth.end = call.end + self.pause()
                self.fail(auth, PROVIDER_DOWN, call.end)
                self.log(t, auth, auth.end, SEVERE, "charge failed",
                         _exception_attrs(PROVIDER_DOWN, **{"app.order.id": order_id}))
                return auth.end + self.pause(), 14, "payment provider unavailable"
        else:
            call = self.external(t, auth, "payments", PAYMENT_PROVIDER, "POST", "/v1/charges",
                                 at, took, 402 if declined else 200)
        auth.end = call.end + self.pause()
        stored = self.sql(t, server, "payments", "INSERT", "payments", SQL.INSERT_PAYMENT,
                          auth.end + self.pause())
        if declined:
            self.fail(auth, CARD_DECLINED, call.end)
            self.log(t, auth, auth.end, SEVERE, "charge declined", _exception_attrs(
                CARD_DECLINED, **{"app.order.id": order_id, "app.payment.card_brand": brand}))
            return stored.end + self.pause(), 9, CARD_DECLINED.message
        self.log(t, auth, auth.end, INFO, f"charge authorized for order {order_id}", {
            "app.order.id": order_id, "app.payment.amount": total / 100,
            "app.payment.currency": "USD", "app.payment.card_brand": brand})
        return stored.end + self.pause(), 0, ""

    # ---------------------------------------------------------------- queue consumers
    def _ship(self, t: TraceDraft, root: SpanDraft, at: int, order_id: str) -> int:
        order = self.sql(t, root, "shipping", "SELECT", "orders", SQL.ORDER, at)
        carrier = self.rng.choice(CARRIERS)
        quote = self.internal(t, root, "shipping", "quote rates", order.end + self.pause(),
                              self.lat(3), "shipping.rates.quote", **{"app.order.id": order_id})
        self.event(quote, quote.end, "rates.quoted", [
            kv("app.shipping.carrier", carrier), kv("app.shipping.quotes", 3)])
        at = quote.end + self.pause()
        if self.chance(0.03):  # the carrier's API is unreachable: two tries, then later
            for attempt in (0, 1):
                call = self.external(t, root, "shipping", CARRIER, "POST", "/v2/shipments", at,
                                     self.ms(3000, 3010), 0, resend=attempt,
                                     error=CARRIER_TIMEOUT.type)
                self.fail(call, CARRIER_TIMEOUT, call.end)
                at = call.end + self.ms(500, 520)
            retry = self.sql(t, root, "shipping", "INSERT", "shipment_retries", SQL.RETRY, at)
            self.fail(root, CARRIER_TIMEOUT, retry.end, "shipment creation failed")
            self.log(t, root, retry.end, SEVERE, "shipment creation failed, retry scheduled",
                     _exception_attrs(CARRIER_TIMEOUT, **{"app.order.id": order_id}))
            return retry.end + self.pause()
        call = self.external(t, root, "shipping", CARRIER, "POST", "/v2/shipments", at,
                             self.lat(220, 0.4), 201)
        shipment = self.sql(t, root, "shipping", "INSERT", "shipments", SQL.INSERT_SHIPMENT,
                            call.end + self.pause())
        status = self.sql(t, root, "shipping", "UPDATE", "orders", SQL.ORDER_STATUS,
                          shipment.end + self.pause())
        self.log(t, root, status.end, INFO, {
            "message": "shipment created", "order_id": order_id, "carrier": carrier,
            "parcels": 1}, {"app.order.id": order_id}, "shop.shipment.created")
        return status.end + self.pause()

    def _email(self, t: TraceDraft, root: SpanDraft, at: int, order_id: str) -> int:
        dedupe = self.redis(t, root, "email", "SET", "email:sent:? NX", at)
        customer = self.sql(t, root, "email", "SELECT", "customers", SQL.CUSTOMER,
                            dedupe.end + self.pause())
        render = self.internal(t, root, "email", "render order_confirmation",
                               customer.end + self.pause(), self.lat(6, 0.4),
                               "Shop.Email.TemplateRenderer.Render", **{
                                   "app.email.template": "order_confirmation",
                                   "app.email.locale": self.rng.choice(("en-US", "de-DE"))})
        at, resend = render.end + self.pause(), 0
        if self.chance(0.04):  # throttled by the mail relay: wait a second and resend
            first = self.external(t, root, "email", MAILER, "POST", "/v3/mail/send", at,
                                  self.lat(40, 0.3), 429)
            self.fail(first, MAIL_THROTTLED, first.end)
            self.log(t, root, first.end, WARN, "mail relay throttled, retrying in 1s",
                     {"app.order.id": order_id, "http.response.status_code": 429})
            at, resend = first.end + self.ms(1000, 1050), 1
        call = self.external(t, root, "email", MAILER, "POST", "/v3/mail/send", at,
                             self.lat(120, 0.4), 202, resend=resend)
        logged = self.sql(t, root, "email", "INSERT", "email_log", SQL.EMAIL_LOG,
                          call.end + self.pause())
        self.log(t, root, logged.end, INFO, "order confirmation sent",
                 {"app.order.id": order_id, "app.email.template": "order_confirmation"})
        return logged.end + self.pause()
