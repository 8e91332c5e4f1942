"""The fictional shop's fixed facts: services, their instrumentation, peers and products.

Instrumentation scope names and versions mimic what the real OpenTelemetry libraries of
each language report, so the demo looks like telemetry from a polyglot deployment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    version: str
    language: str            # telemetry.sdk.language
    sdk_version: str
    runtime: tuple[str, str]  # process.runtime.name, process.runtime.version
    host: str
    ip: str
    port: int
    scopes: dict[str, tuple[str, str]]  # role → (instrumentation scope name, version)


def _scopes(**roles: tuple[str, str]) -> dict[str, tuple[str, str]]:
    return dict(roles)


_OTEL_JS = "0.57.2"
_OTEL_GO = "0.59.0"
_OTEL_JAVA = "2.12.0-alpha"
_OTEL_PY = "0.50b0"

SERVICES: dict[str, Service] = {s.name: s for s in (
    Service("frontend", "2.14.3", "nodejs", "1.30.1", ("nodejs", "22.12.0"),
            "frontend-6c9d7b8f4d-k2xqp", "10.42.1.23", 8080, _scopes(
                http_server=("@opentelemetry/instrumentation-http", _OTEL_JS),
                http_client=("@opentelemetry/instrumentation-http", _OTEL_JS),
                grpc=("@opentelemetry/instrumentation-grpc", _OTEL_JS),
                redis=("@opentelemetry/instrumentation-ioredis", "0.47.0"),
                app=("shop-frontend", "2.14.3"))),
    Service("checkout", "1.8.0", "go", "1.34.0", ("go", "go1.23.4"),
            "checkout-5f7d9c8b6-w9zlm", "10.42.2.41", 50051, _scopes(
                grpc=("go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/"
                      "otelgrpc", _OTEL_GO),
                http_client=("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                             _OTEL_GO),
                db=("github.com/XSAM/otelsql", "0.37.0"),
                redis=("github.com/redis/go-redis/extra/redisotel", "9.7.0"),
                messaging=("github.com/twmb/franz-go/plugin/kotel", "1.5.0"),
                app=("shop/checkout", "1.8.0"))),
    Service("payments", "3.8.1", "java", "1.46.0",
            ("OpenJDK Runtime Environment", "21.0.5+11-LTS"),
            "payments-7b4f6d5c9-hq4vn", "10.42.2.57", 50052, _scopes(
                grpc=("io.opentelemetry.grpc-1.6", _OTEL_JAVA),
                http_client=("io.opentelemetry.java-http-client", _OTEL_JAVA),
                db=("io.opentelemetry.jdbc", _OTEL_JAVA),
                app=("com.example.shop.payments", "3.8.1"))),
    Service("inventory", "0.23.1", "python", "1.29.0", ("cpython", "3.12.8"),
            "inventory-84c6f9d7b-5tgrs", "10.42.3.12", 5000, _scopes(
                http_server=("opentelemetry.instrumentation.flask", _OTEL_PY),
                db=("opentelemetry.instrumentation.psycopg", _OTEL_PY),
                redis=("opentelemetry.instrumentation.redis", _OTEL_PY),
                app=("inventory.stock", "0.23.1"))),
    Service("shipping", "1.2.5", "python", "1.29.0", ("cpython", "3.12.8"),
            "shipping-6d8b7c5f4-mx7qd", "10.42.3.30", 5000, _scopes(
                messaging=("opentelemetry.instrumentation.confluent_kafka", _OTEL_PY),
                http_client=("opentelemetry.instrumentation.requests", _OTEL_PY),
                db=("opentelemetry.instrumentation.psycopg", _OTEL_PY),
                app=("shipping.worker", "1.2.5"))),
    Service("email", "4.0.2", "dotnet", "1.10.0", ("dotnet", "9.0.0"),
            "email-59c8d7f6b-zp2kc", "10.42.1.66", 8080, _scopes(
                messaging=("Confluent.Kafka.Extensions.Diagnostics", "0.4.0"),
                http_client=("System.Net.Http", "9.0.0"),
                db=("Npgsql", "9.0.2"),
                redis=("OpenTelemetry.Instrumentation.StackExchangeRedis", "1.10.0-beta.1"),
                app=("Shop.Email.Worker", "4.0.2"))),
)}


@dataclass(frozen=True)
class Peer:
    """A dependency without its own telemetry: seen only through client spans."""
    name: str      # peer.service
    address: str   # server.address
    ip: str
    port: int


POSTGRES = Peer("postgres", "postgres.shop.svc.cluster.local", "10.42.0.15", 5432)
REDIS = Peer("redis", "redis.shop.svc.cluster.local", "10.42.0.21", 6379)
KAFKA = Peer("orders-queue", "kafka.shop.svc.cluster.local", "10.42.0.30", 9092)
PAYMENT_PROVIDER = Peer("payflow", "api.payflow.example", "203.0.113.10", 443)
CARRIER = Peer("parcelhub", "api.parcelhub.example", "203.0.113.44", 443)
MAILER = Peer("mailrelay", "api.mailrelay.example", "203.0.113.80", 443)

QUEUE = "orders-queue"
DB_NAME = "shop"
PUBLIC_HOST = "shop.example.com"


@dataclass(frozen=True)
class Product:
    id: int
    sku: str
    name: str
    category: str
    price_cents: int


PRODUCTS: tuple[Product, ...] = tuple(
    Product(i + 101, f"SKU-{i + 101:05d}", name, category, price)
    for i, (name, category, price) in enumerate((
        ("Ethiopia Yirgacheffe 250g", "coffee", 1450), ("Colombia Huila 250g", "coffee", 1290),
        ("Kenya AA 250g", "coffee", 1590), ("House Espresso 1kg", "coffee", 3400),
        ("Decaf Swiss Water 250g", "coffee", 1350), ("Guatemala Antigua 250g", "coffee", 1390),
        ("Sencha Asamushi 100g", "tea", 1190), ("Darjeeling First Flush 100g", "tea", 1690),
        ("Assam Breakfast 250g", "tea", 990), ("Rooibos Vanilla 100g", "tea", 790),
        ("Gyokuro Premium 50g", "tea", 2290), ("Hario V60 Dripper", "brewing", 2490),
        ("Chemex 6-cup", "brewing", 4990), ("AeroPress Go", "brewing", 3690),
        ("Burr Grinder C40", "brewing", 24900), ("Gooseneck Kettle", "brewing", 5990),
        ("Paper Filters x100", "brewing", 590), ("Stoneware Mug 350ml", "mugs", 1890),
        ("Double-wall Glass 250ml", "mugs", 1490), ("Travel Tumbler 400ml", "mugs", 2690),
        ("Espresso Cup Set", "mugs", 3290), ("Tea Infuser Mug", "mugs", 2190),
    ))
)
CATEGORIES = ("coffee", "tea", "brewing", "mugs")

USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "ShopApp/5.3.0 (Android 15; Pixel 8)",
)
CARD_BRANDS = ("visa", "mastercard", "amex")
CARRIERS = ("dhl", "ups", "postnl")


class SQL:
    """Statements as each service's driver reports them: $1 for pgx and Npgsql, ? for JDBC,
    %s for psycopg; parameters are never inlined."""

    PRODUCT = "SELECT id, sku, name, description, price_cents FROM products WHERE id = %s"
    STOCK = "SELECT quantity, reserved FROM stock WHERE sku = %s"
    RELATED = ("SELECT p.id, p.sku, p.name FROM related_products r JOIN products p ON p.id = "
               "r.related_id WHERE r.product_id = %s LIMIT 4")
    BY_CATEGORY = ("SELECT id, sku, name, price_cents FROM products WHERE category = %s "
                   "ORDER BY popularity DESC LIMIT %s")
    POPULAR = "SELECT id, sku, name, price_cents FROM products ORDER BY popularity DESC LIMIT %s"
    RESERVE = ("UPDATE stock SET reserved = reserved + %s WHERE sku = %s AND quantity - "
               "reserved >= %s")
    RELEASE = ("UPDATE stock SET reserved = reserved - r.quantity FROM reservations r WHERE "
               "r.order_id = %s AND stock.sku = r.sku")
    INSERT_ORDER = ("INSERT INTO orders (id, user_id, total_cents, currency, status) VALUES "
                    "($1, $2, $3, $4, 'placed')")
    INSERT_ITEMS = ("INSERT INTO order_items (order_id, sku, quantity, price_cents) SELECT * "
                    "FROM unnest($1::text[], $2::text[], $3::int[], $4::int[])")
    INSERT_PAYMENT = ("INSERT INTO payments (order_id, amount_cents, currency, card_brand, "
                      "status, provider_ref) VALUES (?, ?, ?, ?, ?, ?)")
    ORDER = ("SELECT o.id, o.user_id, a.country, a.postal_code FROM orders o JOIN addresses a "
             "ON a.user_id = o.user_id WHERE o.id = %s")
    INSERT_SHIPMENT = ("INSERT INTO shipments (order_id, carrier, tracking_number, label_url) "
                       "VALUES (%s, %s, %s, %s)")
    ORDER_STATUS = "UPDATE orders SET status = %s WHERE id = %s"
    RETRY = ("INSERT INTO shipment_retries (order_id, attempt, not_before) VALUES (%s, %s, "
             "now() + interval '5 minutes')")
    CUSTOMER = "SELECT email, first_name, locale FROM customers WHERE id = $1"
    EMAIL_LOG = "INSERT INTO email_log (order_id, template, provider_id) VALUES ($1, $2, $3)"


@dataclass(frozen=True)
class Failure:
    type: str
    message: str
    stacktrace: str


CARD_DECLINED = Failure(
    "com.example.shop.payments.CardDeclinedException", "card declined: insufficient_funds",
    "com.example.shop.payments.CardDeclinedException: card declined: insufficient_funds\n"
    "\tat com.example.shop.payments.ChargeService.authorize(ChargeService.java:142)\n"
    "\tat com.example.shop.payments.ChargeService.charge(ChargeService.java:88)\n"
    "\tat com.example.shop.payments.grpc.PaymentGrpcService.charge(PaymentGrpcService.java:51)\n"
    "\tat io.grpc.stub.ServerCalls$UnaryServerCallHandler$UnaryServerCallListener.onHalfClose"
    "(ServerCalls.java:182)")
PROVIDER_DOWN = Failure(
    "com.example.shop.payments.ProviderUnavailableException",
    "payflow returned 503 Service Unavailable after 2 attempts",
    "com.example.shop.payments.ProviderUnavailableException: payflow returned 503 Service "
    "Unavailable after 2 attempts\n"
    "\tat com.example.shop.payments.payflow.PayflowClient.send(PayflowClient.java:97)\n"
    "\tat com.example.shop.payments.ChargeService.authorize(ChargeService.java:131)\n"
    "\tat com.example.shop.payments.ChargeService.charge(ChargeService.java:88)")
DEADLOCK = Failure(
    "*pgconn.PgError", "ERROR: deadlock detected (SQLSTATE 40P01)",
    "goroutine 4127 [running]:\n"
    "example.com/shop/checkout/internal/orders.(*Store).Insert(0xc000a1e2d0, {0x1a3f0e8, "
    "0xc0013c4f30}, 0xc00098b200)\n\t/src/internal/orders/store.go:118 +0x2c5\n"
    "example.com/shop/checkout/internal/service.(*Checkout).PlaceOrder(0xc0001b6000, "
    "{0x1a3f0e8, 0xc0013c4f30}, 0xc000d2a0f0)\n\t/src/internal/service/checkout.go:203 +0x7a9")
QUERY_TIMEOUT = Failure(
    "psycopg.errors.QueryCanceled", "canceling statement due to statement timeout",
    "Traceback (most recent call last):\n"
    '  File "/app/inventory/routes.py", line 64, in list_products\n'
    "    rows = await repo.products_in(category)\n"
    '  File "/app/inventory/repo.py", line 37, in products_in\n'
    "    await cur.execute(PRODUCTS_BY_CATEGORY, (category,))\n"
    '  File "/usr/local/lib/python3.12/site-packages/psycopg/cursor_async.py", line 97, '
    "in execute\n    raise ex.with_traceback(None)\n"
    "psycopg.errors.QueryCanceled: canceling statement due to statement timeout")
RENDER_BUG = Failure(
    "TypeError", "Cannot read properties of undefined (reading 'price_cents')",
    "TypeError: Cannot read properties of undefined (reading 'price_cents')\n"
    "    at formatPrice (/app/src/views/price.js:12:24)\n"
    "    at renderProduct (/app/src/views/product.js:48:17)\n"
    "    at /app/src/routes/products.js:31:20\n"
    "    at process.processTicksAndRejections (node:internal/process/task_queues:105:5)")
CARRIER_TIMEOUT = Failure(
    "requests.exceptions.ConnectTimeout",
    "HTTPSConnectionPool(host='api.parcelhub.example', port=443): Max retries exceeded with "
    "url: /v2/shipments (Caused by ConnectTimeoutError())",
    "Traceback (most recent call last):\n"
    '  File "/app/shipping/worker.py", line 88, in handle_order\n'
    "    label = carrier.create_shipment(order)\n"
    '  File "/app/shipping/carrier.py", line 41, in create_shipment\n'
    "    resp = self.session.post(self.url, json=payload, timeout=3)\n"
    "requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='api.parcelhub.example', "
    "port=443): Max retries exceeded with url: /v2/shipments")
MAIL_THROTTLED = Failure(
    "System.Net.Http.HttpRequestException",
    "Response status code does not indicate success: 429 (Too Many Requests).",
    "System.Net.Http.HttpRequestException: Response status code does not indicate success: "
    "429 (Too Many Requests).\n"
    "   at System.Net.Http.HttpResponseMessage.EnsureSuccessStatusCode()\n"
    "   at Shop.Email.MailRelayClient.SendAsync(Message message) in /src/MailRelayClient.cs:"
    "line 57\n"
    "   at Shop.Email.OrderConfirmationHandler.HandleAsync(OrderPlaced evt) in "
    "/src/OrderConfirmationHandler.cs:line 33")

# Logs that belong to no request: what services say on their own now and then.
BACKGROUND_LOGS: tuple[tuple[str, int, str, dict[str, str | int]], ...] = (
    ("inventory", 9, "stock cache refreshed", {"cache.entries": 22, "cache.evicted": 3}),
    ("checkout", 9, "kafka producer flushed", {"messaging.batch.message_count": 4}),
    ("payments", 13, "HikariPool-1 - connection is not available, request timed out after "
                     "250ms", {"db.client.connection.pool.name": "HikariPool-1"}),
    ("shipping", 9, "consumer group rebalanced", {"messaging.consumer.group.name": "shipping",
                                                  "messaging.destination.partition.id": "0,1,2"}),
    ("frontend", 13, "slow event loop: 112ms lag", {"nodejs.eventloop.delay.max_ms": 112}),
    ("email", 9, "template cache warmed", {"email.templates": 6}),
)
