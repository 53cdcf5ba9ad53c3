import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fakes import Behaviour, BehaviourError, FakeProviderServer, parse_outcomes
from fakes.providers import SMS_FAKES
from notifyproject.logging import mask_url_password

RATES = ("duplicate", "error", "timeout", "slow", "malformed", "reset")


class Command(BaseCommand):
    # It stands in for the providers and touches none of this service's checks or database.
    requires_system_checks = []
    help = (
        "Run local Firetext, MMG and SES stand-ins that answer sends in the real formats, post "
        "receipts back to this service after a delay, and inject faults at the rates you choose."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8100, help="0 picks a free port")
        parser.add_argument(
            "--receipts-to",
            default="http://127.0.0.1:8000",
            help="base URL of this service for receipts ('' for none); "
            "http://user:password@host:port for CALLBACK_BASIC_AUTH",
        )
        parser.add_argument("--receipt-delay", type=float, default=2.0, metavar="SECONDS")
        parser.add_argument(
            "--outcomes",
            default="delivered=90,permanent-failure=4,temporary-failure=4,pending-then-delivered=2",
            help="weights of receipt outcomes (also: no-receipt)",
        )
        for rate in RATES:
            parser.add_argument(f"--{rate}-rate", type=float, default=0.0, metavar="0..1")
        parser.add_argument("--slow-seconds", type=float, default=2.0)
        parser.add_argument(
            "--timeout-seconds",
            type=float,
            default=None,
            help="how long a timeout fault holds a request (default PROVIDER_TIMEOUT_SECONDS + 1)",
        )
        for name in SMS_FAKES:
            parser.add_argument(f"--{name}-api-keys", default="", help="comma-separated; '' = any")
        parser.add_argument(
            "--sns-topic-arn",
            default=None,
            help="TopicArn of SES receipts (one of SES_SNS_TOPIC_ARNS)",
        )
        parser.add_argument(
            "--inbound-numbers",
            default="",
            help="comma-separated numbers the fakes host: a text sent to one comes back to "
            "this service as a received text (a service's own inbound number, say)",
        )
        parser.add_argument("--threads", type=int, default=64, help="connections served at once")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **options):
        try:
            behaviour = Behaviour().updated(
                {
                    "outcomes": parse_outcomes(options["outcomes"]),
                    "receipt_delay": options["receipt_delay"],
                    "slow_seconds": options["slow_seconds"],
                    **{f"{rate}_rate": options[f"{rate}_rate"] for rate in RATES},
                }
            )
        except BehaviourError as err:
            raise CommandError(str(err)) from err
        hang = options["timeout_seconds"]
        server = FakeProviderServer(
            host=options["host"],
            port=options["port"],
            receipts_to=options["receipts_to"] or None,
            behaviour=behaviour,
            api_keys={
                name: frozenset(filter(None, options[f"{name}_api_keys"].split(",")))
                for name in SMS_FAKES
                if options[f"{name}_api_keys"]
            },
            hang_seconds=settings.PROVIDER_TIMEOUT_SECONDS + 1 if hang is None else hang,
            seed=options["seed"],
            threads=options["threads"],
            ses_region=settings.AWS_REGION,
            sns_topic_arn=options["sns_topic_arn"],
            inbound_numbers=tuple(filter(None, options["inbound_numbers"].split(","))),
        )
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        server.start()
        url = server.url
        self.stdout.write(f"Fake providers listening on {url}", ending="\n")
        for name, fake in SMS_FAKES.items():
            self.stdout.write(f"  {name.upper()}_URL={url}{fake.path}")
        self.stdout.write(f"  AWS_ENDPOINT_URL_SESV2={url}")
        receipts = mask_url_password(options["receipts_to"]) or "nowhere"
        self.stdout.write(f"  receipts to {receipts}; requests at {url}/_requests")
        self.stdout.flush()
        stop.wait()
        self.stdout.write("Stopping fake providers")
        server.stop()
