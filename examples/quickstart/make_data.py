"""Write the quickstart's task data: customer messages routed to one of four teams.

    python examples/quickstart/make_data.py      # rewrites train.jsonl and held_out.jsonl beside this file

The messages are built from hand-written templates with slots (products, order numbers, amounts, devices).
Each template is used on one side only: the held-out rows come from templates the model never trains on,
so the score measures whether it learned the routing, not the sentences. The output is deterministic
(a fixed seed) and is committed, so the quickstart needs no download.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEAMS = ("billing", "shipping", "account", "technical")
QUESTION = "Which team should handle this message: billing, shipping, account or technical? Answer with one word."

TEMPLATES = {
    "billing": [
        "I was charged twice for my {plan} subscription this month. Please refund one of the payments.",
        "Why does my card statement show {amount} from you? I never ordered anything for that much.",
        "The invoice for order {order} lists the wrong company name and VAT number.",
        "I cancelled my {plan} plan last week but you still took {amount} from my account.",
        "Can I pay for the {product} in three instalments instead of all at once?",
        "My discount code was not applied and I paid the full price of {amount}.",
        "Please send me a receipt for the {amount} payment I made on {day}.",
        "You billed me {amount} for shipping even though the order was over the free shipping limit.",
        "My payment for the {product} keeps getting declined although my card works everywhere else.",
        "I returned the {product} a month ago and the refund of {amount} has still not reached my card.",
        "How do I switch my {plan} plan from monthly to yearly billing?",
        "There is a charge of {amount} labelled 'service fee' on my bill. What is it for?",
        "I want a refund for the {product}; it was a gift that arrived too late.",
        "Can you update the billing address on my invoices to {city}?",
        "Do you accept PayPal for the {product}, or only credit cards?",
        "The price of the {product} dropped the day after I bought it. Can I get the difference back?",
        "I got an email saying my payment failed, but the money has left my bank account.",
        "Please stop the automatic renewal of my {plan} subscription before I am charged again.",
        "I need an itemised invoice for order {order} for my company's accounts.",
        "Is sales tax included in the {amount} shown at checkout?",
    ],
    "shipping": [
        "My order {order} was supposed to arrive on {day} but the tracking has not moved in a week.",
        "The {product} arrived with a cracked box and a broken part inside.",
        "Can you ship to {city}? The checkout page does not list it.",
        "{courier} says my parcel was delivered, but there is nothing at my door.",
        "I ordered two {product}s and only one came in the package.",
        "How long does standard delivery to {city} usually take?",
        "Can I change the delivery address for order {order}? I am moving on {day}.",
        "The tracking number for order {order} does not work on the {courier} website.",
        "My parcel to {city} is stuck in customs. What do I need to do?",
        "Is express delivery available for the {product}? I need it before {day}.",
        "The courier left my {product} with a neighbour I don't know.",
        "I received someone else's order instead of my {product}.",
        "Order {order} shows 'returned to sender'. Can you send it again?",
        "Can I pick up my order from your warehouse instead of waiting for {courier}?",
        "The package with my {product} has been 'out for delivery' for three days.",
        "Do you deliver on weekends in {city}? I'm not home on weekdays.",
        "Please hold my order {order} until I'm back from holiday on {day}.",
        "The box was soaking wet when {courier} dropped it off and the {product} inside is damaged.",
        "Which courier do you use for deliveries to {city}?",
        "My order {order} was split into two parcels and the second one never came.",
    ],
    "account": [
        "I can't log in on my {device}. The password reset email never arrives.",
        "Please change the email address on my profile to my new {mailbox} address.",
        "How do I delete my account and all of my data? I stopped using it on {day}.",
        "Someone seems to have logged into my account from {city}. It wasn't me.",
        "I set up two-factor authentication and lost my {device}. How do I get back in?",
        "Can I merge my two accounts? I made a second one with my {mailbox} address by mistake.",
        "My username still shows my old name, {name}. How can I change it?",
        "I keep getting your newsletter at my {mailbox} address although I unsubscribed.",
        "My account was locked after too many login attempts on my {device}.",
        "How can I see the personal data you store about me? I live in {city}.",
        "I want to add {name} as a second user on my account.",
        "The verification code you text me never arrives on my {device}.",
        "Please reactivate my account; I closed it by accident on {day}.",
        "Can I change the phone number linked to my profile? My old one ends in {digits}.",
        "I signed up with my {mailbox} login and now I want to use a normal password instead.",
        "Why was my account suspended on {day}? I did not break any rules.",
        "How do I stop the emails about new products going to my {mailbox} inbox?",
        "I forgot which email address I used to register; my name is {name}.",
        "Can I move my saved addresses and wish list to my new account, {name}?",
        "My profile picture upload keeps being rejected on my {device}.",
    ],
    "technical": [
        "The app crashes every time I open the {app_part} on my {device}.",
        "Your website shows a blank white page on {device} since this morning.",
        "When I press 'Buy now' on my {device} nothing happens; the button does not respond.",
        "The {app_part} is stuck on a loading spinner forever.",
        "I get 'Error 500' when I try to open the {app_part}.",
        "The app drains my {device}'s battery even when I'm not using it.",
        "Notifications stopped working after the latest app update on my {device}.",
        "Images in the {app_part} do not load, only grey boxes.",
        "The search bar returns no results for '{product}' or anything else I type.",
        "The page keeps logging me out every few minutes while I browse on my {device}.",
        "Dark mode makes the text in the {app_part} unreadable.",
        "The app will not install on my {device}; it says the device is incompatible.",
        "Videos on the product pages freeze after a few seconds on my {device}.",
        "The {app_part} shows prices in the wrong currency after the update.",
        "I get a certificate warning when I open your site on my {device}.",
        "The barcode scanner in the app does not open the camera on my {device}.",
        "Filters on the {app_part} reset every time I scroll down.",
        "The app freezes when I rotate my {device} to landscape.",
        "Your API returns a timeout for every request since {day}.",
        "Text is cut off on the {app_part} when I use a larger font size.",
    ],
}

SLOTS = {
    "plan": ["Basic", "Premium", "Family", "Pro", "Student"],
    "amount": ["$12.99", "$49.00", "€89.50", "£7.20", "$230.00", "€15.00", "$4.99"],
    "order": ["#A1047", "#B2290", "#C3318", "#D4471", "#E5102", "#F6623", "#G7085"],
    "product": ["desk lamp", "coffee grinder", "backpack", "phone case", "rain jacket", "blender", "headphone set"],
    "day": ["Monday", "Friday", "the 3rd", "the 14th", "Tuesday", "the 28th"],
    "city": ["Lisbon", "Toronto", "Melbourne", "Nairobi", "Osaka", "Denver", "Warsaw"],
    "courier": ["UPS", "DHL", "FedEx", "the postal service"],
    "device": ["iPhone", "Android phone", "Windows laptop", "Chromebook", "iPad", "Mac"],
    "mailbox": ["Gmail", "Outlook", "work", "university", "iCloud"],
    "name": ["Sam Ortiz", "Priya Nair", "Jonas Berg", "Amara Okafor", "Lena Fischer", "Tom Walsh"],
    "digits": ["4471", "0923", "5518", "7730"],
    "app_part": ["checkout page", "settings page", "order history", "product page", "shopping cart", "wish list"],
}
# Rows per team: shipping is the largest class, as in a real shop's inbox, so that answering the most common
# team everywhere (the majority-class baseline) scores above a quarter.
ROWS = {"billing": 0.25, "shipping": 0.35, "account": 0.2, "technical": 0.2}
TRAIN_ROWS, HELD_OUT_ROWS = 320, 100
HELD_OUT_TEMPLATES = 5  # per team, never seen in training


def fill(template: str, rng: random.Random) -> str:
    return template.format(**{name: rng.choice(values) for name, values in SLOTS.items()})


def conversation(message: str, team: str | None = None) -> list[dict[str, str]]:
    turns = [{"role": "user", "content": f"{message}\n\n{QUESTION}"}]
    return turns + ([{"role": "assistant", "content": team}] if team else [])


def rows_for(split_templates: dict[str, list[str]], total: int, rng: random.Random) -> list[tuple[str, str]]:
    """About `total` distinct rows in the teams' proportions (fewer where a team's templates run out)."""
    rows: dict[str, str] = {}
    for team in TEAMS:
        wanted, tries = round(total * ROWS[team]), 0
        while sum(t == team for t in rows.values()) < wanted and tries < 50 * wanted:
            rows.setdefault(fill(rng.choice(split_templates[team]), rng), team)
            tries += 1
    shuffled = list(rows.items())
    rng.shuffle(shuffled)
    return shuffled


def main() -> None:
    rng = random.Random(2026)
    train_templates, held_out_templates = {}, {}
    for team, templates in TEMPLATES.items():
        order = templates[:]
        rng.shuffle(order)
        held_out_templates[team], train_templates[team] = order[:HELD_OUT_TEMPLATES], order[HELD_OUT_TEMPLATES:]
    with (HERE / "train.jsonl").open("w") as handle:
        for message, team in rows_for(train_templates, TRAIN_ROWS, rng):
            handle.write(json.dumps({"messages": conversation(message, team)}) + "\n")
    with (HERE / "held_out.jsonl").open("w") as handle:
        for message, team in rows_for(held_out_templates, HELD_OUT_ROWS, rng):
            handle.write(json.dumps({"messages": conversation(message), "ideal": team, "choices": list(TEAMS)}) + "\n")


if __name__ == "__main__":
    main()
