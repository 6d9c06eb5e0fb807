#!/usr/bin/env python3
"""Generate the project's own synthetic corpora (standard library only).

Writes, next to this file:

- ``support_intents/{train,dev,test}.jsonl``: customer-support messages for the fictional
  shop "Pellwick" (membership subscription, store card, deliveries), 14 exclusive intents.
- ``field_notes_ner/{train,dev,test}.conll``: invented news-like and chat-like sentences,
  ``token<TAB>IOB2-tag``, entity types PERSON, ORG, LOC, PRODUCT, DATE.
- ``tiny_textcat/`` and ``tiny_ner/``: small deterministic cuts of the two corpora above,
  for unit tests.

Every template, word list and name here was written for this project or is built from
invented syllables; nothing is copied from another data set. Output is byte-for-byte
reproducible: all randomness comes from ``random.Random`` instances seeded from ``SEED``,
and nothing iterates over an unordered ``set``.

Usage::

    python corpora/generate.py            # (re)write all corpus files
    python corpora/generate.py --check    # regenerate in memory, compare with files on disk
    python corpora/generate.py --stats    # print split sizes and label distributions
"""

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

SEED = 20240611
HERE = Path(__file__).resolve().parent

TEXTCAT_SIZES = {"train": 1500, "dev": 300, "test": 500}
NER_SIZES = {"train": 1200, "dev": 300, "test": 400}
TINY_SIZES = {"train": 40, "dev": 15, "test": 15}

# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def _rng(*parts):
    """Return a Random seeded from SEED and a label, so that each stream is independent.

    Independent streams keep one corpus stable when the other one's generator changes.
    """
    key = "|".join([str(SEED)] + [str(p) for p in parts])
    seed = 0
    for ch in key:
        seed = (seed * 131 + ord(ch)) % (2**61 - 1)
    return random.Random(seed)


def _split_pool(items, rng, fractions):
    """Shuffle a list and cut it into named parts by fraction; returns {name: list}."""
    items = list(items)
    rng.shuffle(items)
    out = {}
    start = 0
    names = list(fractions)
    for i, name in enumerate(names):
        if i == len(names) - 1:
            out[name] = items[start:]
        else:
            end = start + int(round(fractions[name] * len(items)))
            out[name] = items[start:end]
            start = end
    return out


# ---------------------------------------------------------------------------------------------
# 1. support_intents: exclusive text classification
# ---------------------------------------------------------------------------------------------

# Labelling rule for mixed messages: the label is the one thing the customer asks for now.
# Background facts ("I already reset my password") and negated options ("I don't want to
# cancel") never decide the label. A double charge is billing_double_charge even when the
# customer also asks for the money back; a lost card is card_lost even when a new card is
# wanted; "where is it" without any complaint is track_order, overdue is delivery_late.

INTENTS = {
    "card_lost": [
        "I lost my {card}",
        "I think I left my {card} at the {place} and now it's gone",
        "my {card} was stolen {when}, please block it",
        "can you freeze my card? I can't find it anywhere",
        "someone took my wallet with my {card} in it",
        "how do I report a missing card",
        "lost card",
        "my card is gone, what do I do",
        "need to block my card right now, it was stolen",
        "I dropped my {card} somewhere {when}",
        "Can I get a replacement for a card I lost?",
        "my wallet got nicked at the {place}, card included",
        "please cancel my card, it's been stolen",
        "I can't find my card since {when}, is there a way to lock it",
        "I think someone is using the card I lost",
        "card missing after my trip",
        "my bag was snatched, need a new card",
        "is it possible to lock my card until I find it",
        "lost my card and I'm abroad, help",
        "I misplaced my {card}, should I block it?",
        "stolen card",
        "how fast can you send a new card? mine was stolen {when}",
        "my card fell out of my pocket, can you disable it",
        "report stolen card",
        "I have no idea where my card is",
        "my son lost the {card} I gave him",
        "my card has disappeared and I'm worried about fraud",
        "the card is not declined, it's LOST. block it please",
        "card gone. pls block",
        "left my card in a taxi {when}, what now",
        "I need to report my {card} as lost",
        "freeze card, can't find it",
    ],
    "card_declined": [
        "my {card} keeps getting declined at checkout",
        "why was my {card} declined {when}",
        "payment failed even though I have money on my card",
        "card not working",
        "the terminal said declined but my balance is fine",
        "I tried to pay for the {item} and my card got rejected",
        "my card doesn't work online",
        "transaction refused again, what is wrong with my card",
        "card declined",
        "every time I try to buy something the payment is rejected",
        "is there a limit on my card? it was refused for {amt}",
        "my card works in shops but not in your app",
        "I get a 'payment declined' error when ordering",
        "why does my card keep failing",
        "my card was refused at the {place} {when}, so embarrassing",
        "the checkout won't accept my {card}",
        "payment isn't going through",
        "my card is not lost, it just doesn't work anymore",
        "card refused even after I topped it up",
        "can't finish my purchase, the card gets declined",
        "my new {card} doesn't work",
        "chip not reading, card rejected",
        "does my card need activating? it got declined",
        "tried 3 times to pay {amt}, declined every time",
        "the {card} bounced at the till",
        "why won't my card go through",
        "declined again?? I have funds",
        "contactless stopped working on my card",
        "my payment for the {item} keeps failing",
        "card gets rejected on the website",
    ],
    "refund_request": [
        "I want a refund for order {order}",
        "can I get my money back for the {item}",
        "when will I receive my refund?",
        "I sent the {item} back {when} and still no refund",
        "please refund me",
        "refund please",
        "I cancelled the order before it shipped, where is my money",
        "how long do refunds take",
        "I'd like to be reimbursed for {order}",
        "the refund hasn't shown up on my account",
        "money back please, the {item} was not what I expected",
        "I was promised a refund of {amt}",
        "still waiting for my {amt} refund",
        "can you put the money back on my card",
        "I want a full refund",
        "my refund is taking forever",
        "refund status for {order}?",
        "you owe me {amt}, the order was cancelled",
        "can I get a refund instead of store credit",
        "I don't want a replacement, just refund me",
        "requesting my money back for a cancelled order",
        "give me my money back",
        "the return was accepted {when} but where's the money",
        "refund the {item} to my original payment method pls",
        "how much of the {amt} will I get back",
        "I'm owed money for the {item} you never sent",
        "please process my refund",
        "no refund yet for {order}",
    ],
    "return_item": [
        "how do I return the {item}",
        "I need a return label for order {order}",
        "can I send back the {item}? it doesn't fit",
        "what's your return policy",
        "I want to return something",
        "where do I drop off a return",
        "the {item} is too small, how can I send it back",
        "return",
        "is it too late to return the {item} I bought {when}",
        "can I return an item without the box",
        "I changed my mind about the {item}, want to send it back",
        "how many days do I have to return stuff",
        "can you arrange a pickup for my return",
        "not asking for money yet, just how do I send the {item} back",
        "do I have to pay for return shipping",
        "I'd like to exchange the {item} for a bigger size",
        "want to return the {item}, how",
        "started a return in the app but it's stuck",
        "send back the {item}",
        "can I return a gift I got {when}",
        "the return form won't let me pick the {item}",
        "which items can't be returned",
        "can I swap the {item} for a different colour",
        "how do I pack the {item} for the return",
        "I lost the return label, can you send another",
        "return request for {order}",
    ],
    "wrong_item": [
        "I received the wrong item",
        "I ordered a {item} but got a {item2}",
        "the {item} arrived broken",
        "the box had someone else's order in it",
        "my {item} came damaged",
        "wrong size delivered",
        "parts missing from my {item}",
        "this isn't what I ordered",
        "the {item} you sent is cracked",
        "got the wrong colour",
        "package arrived but the {item} inside is smashed",
        "item damaged",
        "you sent me two left shoes lol",
        "the {item} looks nothing like the photo, it's a different model",
        "received a used {item}, it has scratches all over",
        "order {order} arrived with the wrong thing inside",
        "half of my order is missing from the box",
        "the seal on the {item} was broken when it came",
        "opened the parcel and the {item} is in pieces",
        "this {item} is not the one I paid for",
        "my {item} turned up dented",
        "you delivered a {item2} instead of my {item}",
        "the screen on the {item} was shattered on arrival",
        "faulty {item}, it doesn't even turn on out of the box",
        "wrong item in my parcel",
        "there's a {item2} in my box, I never ordered that",
    ],
    "delivery_late": [
        "my order {order} still hasn't arrived",
        "it's been {days} and no package",
        "the delivery was supposed to come {when} but nothing",
        "where is my parcel, it's late",
        "order late",
        "expected delivery date passed {when}",
        "still waiting for my {item}, ordered {days} ago",
        "why is my delivery so delayed",
        "the courier never showed up",
        "my package is overdue",
        "it said 2 day shipping, it's been {days}",
        "tracking hasn't moved in {days}, it should be here by now",
        "I needed the {item} for the weekend and it's still not here",
        "delivery is late again",
        "nothing has arrived yet and it's been over a week",
        "still no package",
        "you said it would be here {when}",
        "my order is stuck and way past the estimated date",
        "late delivery",
        "the {item} was due {when}, where is it",
        "how much longer? the order is {days} late",
        "my parcel missed the delivery date twice now",
        "ordered {days} ago, nothing, this is ridiculous",
        "the {item} hasn't turned up, it was meant to arrive {when}",
        "delayed order {order}",
        "why hasn't my stuff come yet, it's been ages",
    ],
    "track_order": [
        "where can I track my order",
        "can I get a tracking number for {order}",
        "how do I see where my package is",
        "has my order shipped yet?",
        "track order {order}",
        "what's the status of my order",
        "when will my {item} arrive?",
        "is there a way to follow my parcel",
        "did my order go out today",
        "the tracking link in the email doesn't open",
        "which courier is delivering my {item}",
        "just ordered a {item}, when should I expect it",
        "not late or anything, just want to know where my order is",
        "order status",
        "can I get delivery updates by text",
        "what does 'in transit' mean on my order",
        "estimated arrival for {order}?",
        "has the {item} been dispatched",
        "where do I find the tracking code",
        "I placed an order {when}, can I see its progress",
        "is my {item} out for delivery today",
        "can you tell me which depot my parcel is at",
        "how do I check delivery status in the app",
        "any update on {order}?",
    ],
    "change_address": [
        "I need to change my delivery address",
        "I moved, how do I update my address",
        "please send order {order} to {addr} instead",
        "update address",
        "can I change the shipping address after ordering",
        "my billing address is wrong",
        "new address: {addr}",
        "I'm moving {future}, how do I change my address on the account",
        "wrong address on my order, can you fix it",
        "typo in my street name, please correct it",
        "how do I edit my saved addresses",
        "ship it to my work address instead",
        "can it be delivered to my neighbour's address",
        "I entered my old address by mistake",
        "change the postcode on my account",
        "i don't want it sent to my home, change it to {addr}",
        "please update my address to {addr}",
        "the flat number on my address is missing",
        "can I redirect the {item} to a different address",
        "my address changed {when}, where do I update it",
        "delivery address needs changing",
        "is it too late to change where {order} goes",
        "remove my old address from the account",
        "set {addr} as my default address",
    ],
    "cancel_subscription": [
        "I want to cancel my {sub} membership",
        "how do I cancel my subscription",
        "please stop my monthly plan",
        "cancel subscription",
        "I no longer want {sub}, end it",
        "stop charging me every month for the membership",
        "unsubscribe me from the plan",
        "how to end my membership before it renews",
        "I'm done with {sub}, cancel it please",
        "don't renew my subscription",
        "not pausing, I want to cancel for good",
        "turn off auto renew and cancel",
        "cancel my membership effective today",
        "I signed up for the trial by accident, cancel it",
        "end my plan",
        "I want to quit my subscription but keep my account",
        "how do I stop {sub} from renewing",
        "cancel {sub} now please",
        "I don't use the membership anymore, please cancel",
        "where is the cancel button for my plan",
        "no more subscription for me, cancel it",
        "cancel the plan before the next billing date",
        "I want out of {sub}",
        "end my {sub} trial",
    ],
    "pause_subscription": [
        "can I pause my membership for {period}",
        "I don't want to cancel, I want to pause",
        "is there a way to freeze my subscription while I'm away",
        "put my plan on hold",
        "pause subscription",
        "skip next month's box",
        "hold my membership until {month}",
        "I'm travelling for {period}, can I suspend my plan",
        "can I take a break from {sub} without losing my perks",
        "temporarily stop my subscription",
        "not cancelling!! just pausing for a bit",
        "delay my next renewal by a month",
        "how long can I pause for",
        "I'd like to skip a few deliveries of my subscription",
        "pause {sub} for {period} please",
        "can I freeze the plan and restart it in {month}",
        "I want a break from the membership, not to cancel it",
        "put {sub} on hold for {period}",
        "is pausing free or do I still pay",
        "suspend my subscription for {period}",
        "stop my plan for now, I'll come back later",
        "can I resume {sub} later if I pause it now",
    ],
    "password_reset": [
        "I forgot my password",
        "how do I reset my password",
        "can't log in",
        "the reset email never arrives",
        "password reset link expired",
        "locked out of my account",
        "it says my password is wrong but I know it's right",
        "need a new password",
        "can't sign in to the app",
        "the password reset code isn't working",
        "I changed my email and now can't log in",
        "login not working",
        "i keep getting 'invalid credentials'",
        "how to change my password",
        "too many login attempts, now I'm blocked",
        "forgot password",
        "the app logged me out and I don't remember the password",
        "reset link goes to my old email",
        "I can't get into my account",
        "what's the rule for a valid password, mine keeps being rejected",
        "help me get back into my account",
        "password not accepted",
        "sign in fails every time",
        "the 6 digit login code never comes",
    ],
    "close_account": [
        "please delete my account",
        "I want to close my account completely",
        "remove all my data",
        "how do I delete my profile",
        "close account",
        "I don't just want to cancel the plan, I want the whole account gone",
        "deactivate my account permanently",
        "erase my personal information from your systems",
        "I'm leaving {co} for good, close everything",
        "can I delete my account and all order history",
        "shut down my account please",
        "delete my data",
        "I want my account removed",
        "how do I close my {co} account",
        "please wipe my account and email address",
        "I never want to hear from {co} again, delete me",
        "get rid of my account",
        "I'd like to terminate my account",
        "is there a way to remove my account myself",
        "delete profile and everything in it",
        "account deletion request",
        "close my account, I've moved to another shop",
    ],
    "billing_double_charge": [
        "I was charged twice for order {order}",
        "double charge on my card",
        "you billed me two times for the same {item}",
        "there are two payments of {amt} for one order",
        "charged twice",
        "my statement shows the same charge twice",
        "why did you take {amt} twice",
        "duplicate payment for my subscription this month",
        "I paid once but got charged two times",
        "the {item} was billed twice, please fix",
        "the same transaction appears twice",
        "I got charged for my membership twice this month",
        "two identical charges from {co} {when}",
        "you took the money twice",
        "charged double for {order}, refund the extra please",
        "I see {amt} taken two times on {when2}",
        "one order, two charges",
        "duplicate charge",
        "why am I paying twice for {sub}",
        "my bank shows {co} charged me twice",
        "the payment went through twice by mistake",
        "I was billed twice, I only ordered one {item}",
    ],
    "update_payment_method": [
        "how do I change the card on my account",
        "I got a new card, need to update my payment details",
        "add a new payment method",
        "update my card details",
        "my card expired, where do I enter the new one",
        "can I pay with a different card for my subscription",
        "remove my old card from the account",
        "switch my payment to bank transfer",
        "change payment method",
        "I want to use my partner's card instead",
        "how to update the expiry date on my saved card",
        "set a different default card",
        "replace the card on file",
        "the bank sent me a new card, how do I put it on {co}",
        "I lost my old card and have a replacement now, how do I add it",
        "can I have two cards on my account",
        "update billing card",
        "where do I edit my payment info",
        "use my other card for {sub} from now on",
        "the card saved in the app is old, change it",
        "delete the saved card and add a new one",
        "can I pay by gift card instead of my bank card",
    ],
}

# Slot fillers. Each list is cut into a part used in every split and a part that only dev and
# test see, so that evaluation texts carry words the classifier never saw in training.
FILLERS = {
    "item": [
        "blender", "rain jacket", "desk lamp", "phone case", "yoga mat", "kettle",
        "headphones", "backpack", "coffee grinder", "running shoes", "bookshelf", "toaster",
        "winter boots", "air fryer", "board game", "garden hose", "laptop stand", "wool scarf",
        "table fan", "bike helmet", "cast iron pan", "duvet cover", "wall clock", "sofa cushion",
        "camping stove", "baby monitor", "printer", "curtains", "drill", "dog bed",
        "water bottle", "office chair", "rug", "teapot", "hair dryer", "sneakers",
        "speaker", "tent", "mirror", "picture frame",
    ],
    "card": ["card", "Pellwick card", "debit card", "store card", "bank card", "Pellwick Pay card"],
    "place": [
        "supermarket", "gym", "train station", "cafe", "cinema", "petrol station", "library",
        "airport", "pub", "bus stop", "market", "pharmacy",
    ],
    "when": [
        "yesterday", "last night", "this morning", "on Monday", "last week", "on Friday",
        "two days ago", "at the weekend", "on Tuesday", "a few days ago", "earlier today",
        "on Sunday", "last Thursday", "three days ago", "on the 12th", "over the weekend",
    ],
    "when2": ["my statement", "the 3rd", "Monday", "the same day", "my bank app", "the 21st"],
    "future": [
        "next week", "next month", "on the 1st", "in two weeks", "at the end of the month",
        "this weekend", "soon",
    ],
    "days": [
        "5 days", "a week", "two weeks", "10 days", "8 days", "three weeks", "12 days",
        "over a week", "nearly a month", "6 days", "nine days", "a fortnight",
    ],
    "period": [
        "a month", "two months", "the summer", "3 months", "six weeks", "a few weeks",
        "the holidays", "one month", "8 weeks",
    ],
    "month": ["March", "June", "September", "January", "next spring", "October", "August", "May"],
    "sub": ["Pellwick Plus", "Plus", "the Plus plan", "my plan", "Pellwick Prime Box", "the box"],
    "co": ["Pellwick", "you", "your shop", "Pellwick Market", "this company", "your company"],
}

ADDRESS_STREETS = [
    "Alder Row", "Quarry Lane", "Mossbank Road", "Ferrier Street", "Old Kiln Way",
    "Tollgate Close", "Brackenhill Drive", "Wren Court", "Saltmarsh Avenue", "Hopper Yard",
    "Lintel Street", "Cobble Walk", "Marrow Lane", "Glasshouse Road", "Thistle Grove",
    "Pennant Place",
]

GREETINGS = [
    "hi", "hello", "hey", "Hi there,", "Hello,", "good morning", "Hi team,", "hey guys",
    "Dear Pellwick,", "hiya", "Good evening.", "yo", "Hello support,", "Hi,",
]
CLOSINGS = [
    "thanks", "thx", "cheers", "please help!!", "asap", "Thanks in advance.", "ty",
    "Regards, a very tired customer", "help", "please reply", "thank you", "pls",
    "this is urgent", "any help appreciated", "?", "...",
]
EMOJI = ["🙏", "😡", "😭", "🤔", "😤", "🙂", "😩", "👍", "📦", "💳", "🔒", "❓", "😬", "🥲"]

# Context sentences that mention another topic but ask for nothing; they are prefixed to a
# request of a different intent (labelled by the request), giving two-topic messages.
ASIDES = {
    "card_lost": [
        "I lost my card last month but that's sorted.",
        "My stolen card was blocked already, thanks for that.",
        "Found my card in the end, so ignore my last message about that.",
    ],
    "card_declined": [
        "My card was declined earlier but it works again now.",
        "The payment problem from yesterday fixed itself.",
    ],
    "refund_request": [
        "I got the refund for my last order, all good there.",
        "The refund for the kettle came through fine.",
        "I'm not after a refund.",
    ],
    "return_item": [
        "I already sent back the other parcel.",
        "The return went through fine last time.",
    ],
    "wrong_item": [
        "Last time you sent the wrong colour but whatever.",
        "The broken lamp from before was replaced, thanks.",
    ],
    "delivery_late": [
        "The parcel finally arrived.",
        "My delivery came late again but never mind that.",
    ],
    "track_order": [
        "I can see in tracking it was delivered.",
        "I know where my parcel is.",
    ],
    "change_address": [
        "I already updated my address.",
        "I moved house recently.",
        "I've put my new address on the account already.",
    ],
    "cancel_subscription": [
        "I'm not cancelling or anything.",
        "I'm happy with my membership.",
    ],
    "pause_subscription": [
        "My plan was paused over the summer and is running again.",
    ],
    "password_reset": [
        "I managed to reset my password.",
        "I got back into my account after the login trouble.",
    ],
    "close_account": [
        "I don't want to close my account.",
        "Please don't delete anything.",
    ],
    "billing_double_charge": [
        "The double charge from March was fixed.",
    ],
    "update_payment_method": [
        "I already put my new card on the account.",
        "My card details are up to date.",
    ],
}

# Asides of the key intent that would contradict a request of these intents.
ASIDE_CONFLICTS = {
    "cancel_subscription": ["close_account"],
    "refund_request": ["billing_double_charge"],
    "track_order": ["delivery_late"],
    "delivery_late": ["track_order"],
    "close_account": ["update_payment_method"],
}

# Relative frequency of each intent (a mildly skewed distribution, as in real inboxes).
INTENT_WEIGHTS = {
    "card_lost": 1.0, "card_declined": 1.0, "refund_request": 1.3, "return_item": 1.0,
    "wrong_item": 0.9, "delivery_late": 1.3, "track_order": 1.1, "change_address": 0.8,
    "cancel_subscription": 1.1, "pause_subscription": 0.7, "password_reset": 1.0,
    "close_account": 0.7, "billing_double_charge": 0.8, "update_payment_method": 0.8,
}

# Common misspellings; the generic typo routine adds random ones on top.
MISSPELLINGS = {
    "receive": ["recieve", "receve"], "received": ["recieved", "recived"],
    "address": ["adress", "addres", "adresss"], "password": ["pasword", "passwrod", "passwd"],
    "cancel": ["cancell", "cansel", "cancle"],
    "subscription": ["subscribtion", "subcription", "sub"],
    "refund": ["refnd", "refunds", "reFund"], "delivery": ["delivary", "delievery"],
    "account": ["acount", "accont", "acc"], "membership": ["membershp", "memebership"],
    "please": ["pls", "plz", "pleas"], "declined": ["declind", "decline"],
    "because": ["cuz", "bc"], "you": ["u"], "your": ["ur", "you're"], "order": ["oder", "ordr"],
    "package": ["pakage", "packge"], "parcel": ["parcle", "parcell"],
    "stolen": ["stollen", "stole"], "arrived": ["arived", "arrvied"],
    "charged": ["charge", "chargd"],
    "payment": ["paymnet", "pyment"], "tracking": ["traking", "trackin"], "what": ["wat", "wht"],
    "anything": ["anythin"], "again": ["agian"], "twice": ["twise"], "return": ["retrun", "retun"],
}


def _typo(word, rng):
    """Return the word with one random keyboard-style slip (swap, drop, double a letter)."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.random()
    if op < 0.4:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op < 0.75:
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def _noisy(text, rng, typo_rate):
    """Apply misspellings and random typos word by word; returns the new text."""
    out = []
    for word in text.split(" "):
        core = word.strip(".,!?'\"")
        low = core.lower()
        if low in MISSPELLINGS and rng.random() < 0.35:
            repl = rng.choice(MISSPELLINGS[low])
            word = word.replace(core, repl)
        elif rng.random() < typo_rate:
            word = word.replace(core, _typo(core, rng)) if core else word
        out.append(word)
    return " ".join(out)


def _fill(template, rng, fillers):
    """Fill every {slot} of a template from the split's filler lists; returns text."""
    text = template
    while "{" in text:
        start = text.index("{")
        end = text.index("}", start)
        slot = text[start + 1:end]
        if slot in ("item", "item2"):
            value = rng.choice(fillers["item"])
            if slot == "item2":
                while value in text:
                    value = rng.choice(fillers["item"])
        elif slot == "order":
            value = rng.choice(["#", "#", "", "no. ", "PW-"]) + str(rng.randrange(10000, 999999))
        elif slot == "amt":
            amount = rng.choice([rng.randrange(5, 300), rng.randrange(5, 120) + 0.99,
                                 rng.randrange(10, 90) + 0.5])
            text_amt = ("%d" % amount) if isinstance(amount, int) else ("%.2f" % amount)
            value = rng.choice(["£", "£", "$", "€", ""]) + text_amt
        elif slot == "addr":
            value = "%d %s" % (rng.randrange(1, 140), rng.choice(fillers["street"]))
        else:
            value = rng.choice(fillers[slot])
        text = text[:start] + value + text[end + 1:]
    return text


def _style(text, rng, short):
    """Decorate a message with greetings, closings, emoji, casing and punctuation noise."""
    if not short and rng.random() < 0.22:
        greet = rng.choice(GREETINGS)
        sep = " " if greet.endswith((",", ".")) else rng.choice([" ", ", ", "! ", " - "])
        text = greet + sep + text
    if not short and rng.random() < 0.22:
        text = text.rstrip(".") + rng.choice([". ", " ", ", ", "! "]) + rng.choice(CLOSINGS)
    if rng.random() < 0.10:
        text = text + rng.choice(["", " "]) + rng.choice(EMOJI) * rng.choice([1, 1, 2, 3])
    roll = rng.random()
    if roll < 0.05:
        text = text.upper() + rng.choice(["", "!!", "!!!", "?!"])
    elif roll < 0.35:
        text = text.lower()
    elif roll < 0.75 and text[:1].islower():
        text = text[:1].upper() + text[1:]
    if rng.random() < 0.15:
        text = text.rstrip(".?!")
    elif rng.random() < 0.1:
        text = text + rng.choice(["?", "??", "!", "."])
    # Trimming punctuation can leave a dangling space; collapse any runs of spaces too.
    return " ".join(text.split())


def _textcat_fillers(split, rng):
    """Return the filler lists a split may draw from.

    Train sees only the "seen" part of every list; dev and test mix seen and held-out parts
    half and half, so roughly half their slot values are new words.
    """
    out = {}
    lists = dict(FILLERS)
    lists["street"] = ADDRESS_STREETS
    for name in sorted(lists):
        values = list(lists[name])
        parts = _split_pool(values, _rng("textcat-fillers", name), {"seen": 0.65, "held": 0.35})
        if split == "train" or not parts["held"]:
            out[name] = parts["seen"]
        else:
            # Doubling the held-out part weights it about as much as the seen part.
            out[name] = parts["seen"] + parts["held"] * 2
    return out


def _template_parts(intent):
    """Split an intent's templates into train-visible and held-out (dev/test only) parts."""
    templates = INTENTS[intent]
    parts = _split_pool(templates, _rng("textcat-templates", intent), {"seen": 0.7, "held": 0.3})
    return parts["seen"], parts["held"]


def generate_textcat():
    """Build the support_intents splits; returns {split: [{"text", "label"}, ...]}."""
    labels = sorted(INTENTS)
    weights = [INTENT_WEIGHTS[label] for label in labels]
    used = set()
    result = {}
    for split in ("train", "dev", "test"):
        rng = _rng("textcat", split)
        fillers = _textcat_fillers(split, rng)
        rows = []
        # Draw the label sequence first so that the split sizes and proportions are exact.
        total = TEXTCAT_SIZES[split]
        wsum = sum(weights)
        counts = [int(total * w / wsum) for w in weights]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        sequence = [label for label, n in zip(labels, counts) for _ in range(n)]
        rng.shuffle(sequence)
        for label in sequence:
            seen, held = _template_parts(label)
            for _attempt in range(50):
                if split == "train" or rng.random() < 0.4:
                    template = rng.choice(seen)
                else:
                    template = rng.choice(held)
                text = _fill(template, rng, fillers)
                short = len(text.split()) <= 3
                text_is_plain = True
                if not short and rng.random() < 0.18:
                    other = rng.choice([lab for lab in labels if lab != label
                                        and label not in ASIDE_CONFLICTS.get(lab, [])])
                    aside = rng.choice(ASIDES[other])
                    if rng.random() < 0.6:
                        text = text[:1].upper() + text[1:]
                    text = aside + " " + text
                    text_is_plain = False
                text = _noisy(text, rng, typo_rate=0.035 if split == "train" else 0.05)
                text = _style(text, rng, short)
                key = text.lower().strip()
                if key not in used:
                    break
            used.add(key)
            # "plain" marks single-topic messages; only the tiny cut looks at it.
            rows.append({"text": text, "label": label, "plain": text_is_plain})
        result[split] = rows
    return result


def _jsonl(rows):
    return "".join(json.dumps({"text": row["text"], "label": row["label"]}, ensure_ascii=False)
                   + "\n" for row in rows)


# ---------------------------------------------------------------------------------------------
# 2. field_notes_ner: IOB2 named entities
# ---------------------------------------------------------------------------------------------

# Names are built from these invented syllables. Surnames and towns share endings ("-by",
# "-ton", "-ova") on purpose, so a word's suffix does not give its type away.
ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "r", "s",
          "st", "t", "tr", "v", "w", "z", "sk", "th", "j"]
VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o", "ai", "ei", "ou", "ia", "y"]
CODAS = ["", "", "", "n", "r", "l", "s", "k", "m", "nd", "rn", "lt", "st"]
GIVEN_ENDS = ["a", "o", "en", "ie", "el", "is", "an", "io", "ette", "y", "ia", "us", "or", "in"]
SURNAME_ENDS = ["", "ik", "sen", "ard", "ley", "ov", "ani", "ton", "ell", "is", "by", "holt",
                "er", "ick", "ens", "ova", "ström", "wick", "mann", "es"]
TOWN_ENDS = ["ford", "mouth", "ova", "stad", "wick", "ham", "by", "ton", "vale", "ia", "dor",
             "gate", "moor", "haven", "ek", "ar", "holm", "bury"]
BRAND_ENDS = ["ix", "on", "ara", "ex", "io", "o", "a", "um", "eon", "ity", "ivo", "yx"]
SERIES_ENDS = ["ra", "on", "is", "o", "ex", "ine", "et", "al", "ion", "ia"]

ORG_SURNAME_SUFFIXES = [["Logistics"], ["Foods"], ["Textiles"], ["Motors"], ["Press"],
                        ["Holdings"], ["Brewery"], ["Timber"], ["Dairies"], ["Freight"],
                        ["Labs"], ["Group"], ["&", "Sons"], ["and", "Partners"], ["Ltd"],
                        ["Seed", "Company"], ["Instruments"], ["Pharma"]]
ORG_BRAND_SUFFIXES = [["Systems"], ["Networks"], ["Labs"], ["Energy"], ["Mobile"], ["Audio"],
                      ["Robotics"], ["Software"], ["Health"]]
ORG_TOWN_SUFFIXES = [["Ferries"], ["Council"], ["Water"], ["Co-op"], ["Gazette"],
                     ["General", "Hospital"], ["Harbour", "Trust"], ["Grain", "Cooperative"],
                     ["Savings", "Bank"], ["Radio"], ["Museum"]]
ORG_TOWN_PREFIXES = [["Bank", "of"], ["University", "of"], ["Port", "of"], ["Friends", "of"]]
TEAM_SUFFIXES = [["Rovers"], ["United"], ["Athletic"], ["FC"], ["Wanderers"], ["City"]]
LOC_PATTERNS = ["{t}", "{t}", "{t}", "{t}", "Lake {t}", "Mount {t}", "{t} Valley", "Port {t}",
                "North {t}", "South {t}", "Upper {t}", "{t} Island", "{t} Hills", "{t} Bay",
                "Cape {t}", "East {t}"]
PRODUCT_MODS = ["Pro", "Mini", "Max", "Lite", "Plus", "S", "Air", "XL", "Go", "Ultra"]
TOWN_PRODUCT_SUFFIXES = ["Gold", "Blue", "Reserve", "Smoked", "Classic", "Dark"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Slots: PER full name, PERF given name, PERS surname (all PERSON); ORG any organisation,
# ORGS one-word company name that is also a surname; BORG a brand used as a company name and
# BPROD a product of the same brand; TEAM club name, TTEAM a bare town name used for its club
# (ORG); LOC any place, TOWN a bare town (LOC); PROD product; DATE a date used after "on",
# PDATE one used after "in"/"since", RDATE a bare future date, XDATE a bare past one;
# NUM and AGE are numbers (O).
NEWS_TEMPLATES = [
    "{PER} , who founded {ORG} in {PDATE} , said the firm would move its offices to {LOC} .",
    "{ORG} said on {DATE} it would stop selling the {PROD} in {LOC} .",
    "Shares in {ORG} rose after {PER} confirmed the launch of the {PROD} .",
    "Officials from {LOC} met representatives of {ORG} on {DATE} .",
    "The {PROD} , made by {ORG} , goes on sale in {LOC} on {DATE} .",
    "{PER} will replace {PER} as head of {ORG} from {DATE} .",
    "Heavy rain closed the road between {LOC} and {LOC} on {DATE} .",
    "{TEAM} beat {TEAM} {NUM} - {NUM} in {TOWN} on {DATE} .",
    "{PERS} scored twice as {TEAM} won at home .",
    "According to {PER} of {ORG} , demand for the {PROD} doubled in {PDATE} .",
    "Police in {LOC} are looking for {PER} , {AGE} , after a fire on {DATE} .",
    "{ORG} has bought a stake in {ORG} for {NUM} million crowns .",
    "In {LOC} , {PER} opened a second shop selling the {PROD} .",
    "{PERS} told reporters that {ORGS} had not been consulted .",
    "{ORGS} posted a loss for the third quarter .",
    "The mayor of {LOC} , {PER} , resigned on {DATE} .",
    "{PER} , a farmer from near {TOWN} , said the harvest was the worst since {PDATE} .",
    "A spokesperson for {ORG} declined to comment .",
    "The new ferry links {LOC} with {LOC} twice a day .",
    "{ORG} employs about {NUM} people in {LOC} .",
    "On {DATE} , {PER} signed a contract with {ORG} .",
    "{PER} ( {ORG} ) finished third in the race from {TOWN} to {TOWN} .",
    "Reviewers praised the {PROD} but criticised its price .",
    "Sales of the {PROD} slowed in {PDATE} , {ORG} said .",
    "{PER} , {AGE} , has lived in {LOC} all her life .",
    "Workers at the {ORG} plant in {LOC} went on strike on {DATE} .",
    "{ORG} chairman {PER} said the {PROD} would be cheaper by {PDATE} .",
    "Residents of {LOC} complained to {ORG} about the noise .",
    "Field notes , {DATE} : saw {PER} at the {ORG} depot outside {TOWN} .",
    "{PERF} from {ORG} came by with a sample of the {PROD} .",
    "Met {PER} in {LOC} ; she works for {ORG} now .",
    "Visited the {ORG} warehouse on {DATE} ; roof still leaking .",
    "{PERS} , the {TEAM} coach , was sacked after the defeat in {TOWN} .",
    "{TTEAM} lost at home to {TTEAM} on {DATE} .",
    "{PER} left {ORGS} in {PDATE} to start her own company in {LOC} .",
    "The bridge over the river at {LOC} reopened on {DATE} .",
    "Mr {PERS} said he had never heard of {ORG} .",
    "Dr {PER} of {ORG} will present the findings in {LOC} .",
    "{ORG} and {ORG} agreed to merge , the companies said on {DATE} .",
    "{PER} , the author of a history of {LOC} , died on {DATE} aged {AGE} .",
    "Trains between {TOWN} and {TOWN} were cancelled after the storm .",
    "{ORGS} will build a factory for the {PROD} near {TOWN} .",
    "Customers in {LOC} reported that the {PROD} overheats .",
    "{PERS} 's lawyers said the case against {ORG} would be dropped .",
    "It was the first visit to {LOC} by {PER} since {PDATE} .",
    "Hikers found the missing dog near {LOC} on {DATE} .",
    "{PER} , speaking in {TOWN} , urged {ORG} to keep the mill open .",
    "{ORG} recalled {NUM} units of the {PROD} .",
    "The {ORG} board approved the sale of its {TOWN} site .",
    "Later , {PER} drove to {TOWN} to collect the {PROD} .",
    "{DATE} was the wettest day in {LOC} for {NUM} years .",
    "{PERF} said the {PROD} she bought from {ORG} broke within a week .",
    "Under the deal , {ORG} will sell the {PROD} in shops across {LOC} .",
    "Samples were sent to {ORG} in {TOWN} for testing .",
    "{PER} , head of research at {ORG} , grew up in {TOWN} .",
    "{BORG} said on {DATE} that the {BPROD} would ship late .",
    "{BORG} cut the price of the {BPROD} by a third .",
    "Fishermen in {TOWN} blame {ORG} for the falling catch .",
    "{RDATE} , {PER} will open the new wing of {ORG} .",
    "{PERS} and {PERS} shared the prize , the jury in {TOWN} said .",
    "{TOWN} voted to leave the {ORG} scheme in {PDATE} .",
    "{PER} , no relation to the {ORGS} family , runs a bakery in {TOWN} .",
    "The {PROD} uses a battery supplied by {ORG} .",
    "{ORG} moved its headquarters from {TOWN} to {TOWN} in {PDATE} .",
    "Rangers closed the path to {LOC} after a rockfall on {DATE} .",
    "Asked about {ORGS} , {PER} said only that talks were going well .",
    "The festival in {TOWN} drew more visitors than in {PDATE} .",
    "Our guide , {PERF} , had worked for {ORG} for {NUM} years .",
    "{LOC} , {LOC} and {LOC} will share the cost of the new road .",
    "Neither {PER} nor {PER} would say how much {ORG} paid for the land .",
    "The {PROD} and the {PROD} both failed the safety test run by {ORG} .",
    "{PERS} , who joined {ORGS} as an apprentice , now runs its {TOWN} office .",
    "A court in {TOWN} fined {ORG} over a leak at its site near {LOC} .",
    "{ORG} expects the {PROD} to reach {LOC} by {PDATE} .",
    "Since {PDATE} the number of boats in {LOC} has halved , said {PER} .",
    "{PER} was born in {TOWN} and studied at {ORG} .",
    "The strike at {ORGS} ended on {DATE} after {NUM} days .",
    "{TTEAM} and {TTEAM} drew {NUM} - {NUM} in front of a small crowd .",
    "Weather permitting , the survey team leaves {TOWN} for {LOC} on {DATE} .",
    "{ORGS} , the {TOWN} firm that makes the {PROD} , is for sale .",
    "Buyers of the {PROD} can claim a refund from {ORG} until {DATE} .",
    "Count at {LOC} : {NUM} herons , {NUM} cormorants ; {PERF} counted the ducks .",
    "Interview with {PER} , {DATE} , at the {ORG} offices in {TOWN} .",
    "{PERS} 's farm lies between {TOWN} and the edge of {LOC} .",
    "It is not clear whether {ORG} will keep the {PROD} brand .",
    "{PER} ( {TOWN} ) and {PER} ( {TOWN} ) reached the final .",
]

CHAT_TEMPLATES = [
    "omg {PERF} just bought the {PROD} 😂",
    "anyone know if {ORG} is hiring in {TOWN} ?",
    "heading to {LOC} on {DATE} , who 's in",
    "lol {PERF} thinks the {PROD} is overrated",
    "my {PROD} died again smh",
    "cant believe {TTEAM} lost to {TTEAM} lmao",
    "{PERF} and i are driving up to {LOC} {RDATE}",
    "is the {ORG} shop in {TOWN} open on {DATE} ?",
    "just got an email from {ORG} about my {PROD} order",
    "thx {PERF} !! see u in {TOWN}",
    "who else is going to see {PER} speak on {DATE}",
    "{TOWN} is so cold rn",
    "ugh {ORGS} support is useless",
    "ordered the {PROD} , arrives {RDATE} apparently",
    "ask {PERF} , she used to work at {ORG}",
    "{PERF} : meet at the station at {NUM} ?",
    "did {PERS} really leave {ORG} ??",
    "pics from {LOC} are up !",
    "{PROD} or {PROD} , which one should i get",
    "my brother works at {ORGS} lol",
    "can't wait for {DATE} , {LOC} here we come",
    "{PERF} u coming to {TOWN} or not",
    "the {ORG} app keeps crashing on my {PROD}",
    "happy birthday {PERF} !!! 🎉",
    "{TTEAM} are top of the league haha",
    "heard {ORG} is closing the {TOWN} branch",
    "ok so {PERF} says the {PROD} is back in stock",
    "anyone selling a used {PROD} near {TOWN} ?",
    "back from {LOC} , so tired",
    "{PER} is trending again , what did he do",
    "{BORG} really dropped the {BPROD} with no charger 🙄",
    "me and {PERF} at {LOC} {XDATE} , best day ever",
    "is {ORGS} still doing free delivery to {TOWN}",
    "{RDATE} ? cant , im in {TOWN} with {PERF}",
    "is {LOC} worth visiting in {PDATE} ?",
    "anyone tried the {PROD} yet",
    "{PERF} got a job at {ORG} !!!",
    "new {BPROD} from {BORG} looks sick",
    "stuck on the train outside {TOWN} again",
    "tell {PERF} i said hi",
    "{ORGS} delivery guy left my parcel in the rain",
    "who's watching {TTEAM} vs {TTEAM} {RDATE}",
    "lost my {PROD} somewhere in {TOWN} 😭",
    "{PERF} {PERF} and me , {LOC} , {XDATE} 📸",
    "does {ORG} still sell the {PROD} or nah",
    "{PER} follows me now lmaooo",
]

HEADLINE_TEMPLATES = [
    "{ORG} to cut {NUM} jobs in {LOC}",
    "{PER} named new chief of {ORG}",
    "{LOC} floods : roads closed until {DATE}",
    "{TEAM} sign striker {PER}",
    "{PROD} review : fast , loud and expensive",
    "{ORG} shares slump after {PROD} delay",
    "why {LOC} is running out of water",
    "{ORGS} profit doubles",
    "ferry strike hits {TOWN} on {DATE}",
    "new plant for {ORG} near {TOWN}",
    "{TTEAM} stun {TTEAM} in cup",
    "{PERS} wins {TOWN} marathon",
]

EMPTY_TEMPLATES = [
    "The meeting ended early .",
    "ok see you then",
    "Nobody answered the phone .",
    "Most of the samples were lost in transit .",
    "Rain all day , nothing to report .",
    "lol same",
    "The report will be published after the vote .",
    "Prices for fuel rose again .",
    "Counted {NUM} geese on the north field .",
    "wait what",
    "The Council has not yet replied .",
    "Water levels are back to normal .",
]

SMALL_WORDS = {"a", "an", "and", "at", "by", "for", "in", "of", "on", "or", "the", "to",
               "with", "from", "is", "after", "until", "near"}


def _syllable(rng, onset=True):
    return (rng.choice(ONSETS) if onset else "") + rng.choice(VOWELS) + rng.choice(CODAS)


def _coin(rng, ends, syllables):
    """Make one capitalised invented word from syllables and an ending."""
    word = "".join(_syllable(rng, onset=(i == 0 or rng.random() < 0.6)) for i in range(syllables))
    end = rng.choice(ends)
    # Avoid awkward vowel pile-ups at the seam, e.g. "Touaova".
    if end and word[-1] in "aeiouy" and end[0] in "aeiouy":
        word = word[:-1]
    return (word + end)[:1].upper() + (word + end)[1:]


def _name_pools():
    """Return {kind: {"shared"|"train"|"dev"|"test": [names]}} of unique invented names."""
    rng = _rng("ner-names")
    specs = [("given", GIVEN_ENDS, 1, 220), ("surname", SURNAME_ENDS, 2, 420),
             ("town", TOWN_ENDS, 2, 300), ("brand", BRAND_ENDS, 2, 140),
             ("series", SERIES_ENDS, 1, 100)]
    taken = {m.lower() for m in MONTHS + WEEKDAYS}
    taken.update(w.lower() for w in SMALL_WORDS)
    pools = {}
    for kind, ends, syllables, count in specs:
        names = []
        while len(names) < count:
            name = _coin(rng, ends, syllables)
            if 3 <= len(name) <= 11 and name.lower() not in taken:
                taken.add(name.lower())
                names.append(name)
        pools[kind] = _split_pool(names, _rng("ner-pool", kind),
                                  {"shared": 0.3, "train": 0.4, "dev": 0.15, "test": 0.15})
    # "May" is both a given name and a month: the context has to decide.
    pools["given"]["shared"].append("May")
    return pools


class _NerSampler:
    """Draws entity strings for one split from that split's name pools."""

    def __init__(self, split, pools, rng, famous=None):
        self.split = split
        self.pools = pools
        self.rng = rng
        self.last_brand = None
        self.famous = _famous_entities(pools) if famous is None else famous

    def name(self, kind):
        parts = self.pools[kind]
        # Dev and test take a bit over half their names from pools train never saw.
        if self.split == "train" or self.rng.random() < 0.45:
            return self.rng.choice(parts["shared"] + parts["train"] if self.split == "train"
                                   else parts["shared"])
        return self.rng.choice(parts[self.split])

    def person(self):
        r = self.rng.random()
        if r < 0.12:
            return [self.name("given"), self.name("given")[0] + ".", self.name("surname")]
        if r < 0.2:
            return [self.name("given"), self.name("surname") + "-" + self.name("surname")]
        return [self.name("given"), self.name("surname")]

    def org(self):
        r = self.rng.random()
        if r < 0.3:
            return [self.name("surname")] + self.rng.choice(ORG_SURNAME_SUFFIXES)
        if r < 0.38:
            return [self.name("surname"), "&", self.name("surname")]
        if r < 0.5:
            return [self.name("brand")]
        if r < 0.62:
            return [self.name("brand")] + self.rng.choice(ORG_BRAND_SUFFIXES)
        if r < 0.72:
            return self.rng.choice(ORG_TOWN_PREFIXES) + [self.name("town")]
        if r < 0.9:
            return [self.name("town")] + self.rng.choice(ORG_TOWN_SUFFIXES)
        length = self.rng.choice([2, 3, 3, 4])
        letters = "".join(self.rng.choice("ABCDEFGHKLMNPRSTVW") for _ in range(length))
        return [letters]

    def team(self):
        return [self.name("town")] + self.rng.choice(TEAM_SUFFIXES)

    def town(self):
        # Some towns carry a family name, as many real places do.
        return self.name("surname" if self.rng.random() < 0.1 else "town")

    def loc(self):
        return self.rng.choice(LOC_PATTERNS).format(t=self.town()).split(" ")

    def product(self, brand=None):
        r = self.rng.random()
        brand = brand or self.name("brand")
        number = str(self.rng.choice([2, 3, 4, 5, 7, 8, 9, 10, 12, 20, 100, 300, 500]))
        if r < 0.25:
            return [brand, number]
        if r < 0.45:
            return [brand, self.name("series")]
        if r < 0.6:
            return [brand, self.name("series"), self.rng.choice(PRODUCT_MODS)]
        if r < 0.72:
            return [self.name("series"), number]
        if r < 0.8:
            return [brand, self.rng.choice("XSZQ") + number]
        if r < 0.9:
            return [self.name("town"), self.rng.choice(TOWN_PRODUCT_SUFFIXES)]
        return [self.name("series"), self.rng.choice(PRODUCT_MODS)]

    def date(self, kind):
        rng = self.rng
        day = str(rng.randrange(1, 29))
        month = rng.choice(MONTHS)
        year = str(rng.randrange(1968, 2026))
        if kind == "DATE":
            return rng.choice([[day, month], [month, day], [rng.choice(WEEKDAYS)],
                               [day, month, year], [rng.choice(WEEKDAYS)], [day, month]])
        if kind == "PDATE":
            return rng.choice([[month, year], [year], [year], [month],
                               [rng.choice(["early", "late", "mid"]), month],
                               [rng.choice(["spring", "autumn", "summer", "winter"]), year]])
        if kind == "XDATE":
            return rng.choice([["yesterday"], ["last", rng.choice(WEEKDAYS)], ["last", "week"],
                               ["last", "year"], ["last", "night"], [rng.choice(WEEKDAYS)]])
        return rng.choice([["tomorrow"], ["next", rng.choice(WEEKDAYS)], ["next", "week"],
                           ["tonight"], ["this", "weekend"], ["next", "month"]])

    def fill(self, slot):
        """Return (tokens, entity label or None) for one template slot."""
        # A few well-known entities recur in every split, as they do in real news.
        if slot in self.famous and self.rng.random() < 0.25:
            label, entities = self.famous[slot]
            return list(self.rng.choice(entities)), label
        if slot == "PER":
            return self.person(), "PERSON"
        if slot == "PERF":
            return [self.name("given")], "PERSON"
        if slot == "PERS":
            return [self.name("surname")], "PERSON"
        if slot == "ORG":
            return self.org(), "ORG"
        if slot == "ORGS":
            return [self.name("surname")], "ORG"
        if slot == "BORG":
            return [self.last_brand], "ORG"
        if slot == "BPROD":
            if self.rng.random() < 0.5:
                return self.product(self.last_brand)[:2], "PRODUCT"
            return [self.last_brand, str(self.rng.randrange(2, 12))], "PRODUCT"
        if slot == "TEAM":
            return self.team(), "ORG"
        if slot == "TTEAM":
            return [self.name("town")], "ORG"
        if slot == "LOC":
            return self.loc(), "LOC"
        if slot == "TOWN":
            return [self.town()], "LOC"
        if slot == "PROD":
            return self.product(), "PRODUCT"
        if slot in ("DATE", "PDATE", "RDATE", "XDATE"):
            return self.date(slot), "DATE"
        if slot == "NUM":
            numbers = [0, 1, 2, 3, 4, 5, 6, 7, 12, 40, 85, 120, 300, 1500]
            return [str(self.rng.choice(numbers))], None
        if slot == "AGE":
            return [str(self.rng.randrange(19, 91))], None
        raise ValueError("unknown slot %r" % slot)


def _famous_entities(pools):
    """Return {slot: (label, [tokens, ...])}: a fixed set of recurring entities.

    They are built from the shared name pools, so every split may mention them.
    """
    sampler = _NerSampler("famous", {k: {"shared": v["shared"], "famous": v["shared"]}
                                     for k, v in pools.items()}, _rng("ner-famous"), famous={})
    return {"PER": ("PERSON", [sampler.person() for _ in range(14)]),
            "ORG": ("ORG", [sampler.org() for _ in range(16)]),
            "LOC": ("LOC", [sampler.loc() for _ in range(12)]),
            "PROD": ("PRODUCT", [sampler.product() for _ in range(10)])}


def _expand(template, sampler):
    """Turn a template into a list of (token, IOB2 tag) pairs."""
    # BORG and BPROD name the same brand, whichever of them comes first.
    sampler.last_brand = sampler.name("brand")
    pairs = []
    for piece in template.split(" "):
        if piece.startswith("{") and piece.endswith("}"):
            tokens, label = sampler.fill(piece[1:-1])
            for i, token in enumerate(tokens):
                tag = "O" if label is None else ("B-" if i == 0 else "I-") + label
                pairs.append((token, tag))
        else:
            pairs.append((piece, "O"))
    return pairs


def _titlecase(pairs):
    out = []
    for i, (token, tag) in enumerate(pairs):
        if tag == "O" and (i == 0 or token not in SMALL_WORDS) and token[:1].islower():
            token = token[:1].upper() + token[1:]
        out.append((token, tag))
    return out


def generate_ner():
    """Build the field_notes_ner splits; returns {split: [[(token, tag), ...], ...]}."""
    pools = _name_pools()
    groups = {"news": NEWS_TEMPLATES, "chat": CHAT_TEMPLATES, "headline": HEADLINE_TEMPLATES,
              "empty": EMPTY_TEMPLATES}
    parts = {name: _split_pool(templates, _rng("ner-templates", name), {"seen": 0.75, "held": 0.25})
             for name, templates in sorted(groups.items())}
    group_names = ["news", "chat", "headline", "empty"]
    group_weights = [0.55, 0.27, 0.11, 0.07]
    seen_keys = set()
    result = {}
    for split in ("train", "dev", "test"):
        rng = _rng("ner", split)
        sampler = _NerSampler(split, pools, rng)
        sentences = []
        while len(sentences) < NER_SIZES[split]:
            group = rng.choices(group_names, group_weights)[0]
            use_held = split != "train" and rng.random() < 0.6 and parts[group]["held"]
            template = rng.choice(parts[group]["held" if use_held else "seen"])
            pairs = _expand(template, sampler)
            if group == "chat" and rng.random() < 0.85:
                pairs = [(token.lower(), tag) for token, tag in pairs]
            elif group == "headline":
                pairs = _titlecase(pairs)
            elif group == "news" and rng.random() < 0.15:
                # Some news lines arrive lower-cased (pasted from a chat or a transcript).
                pairs = [(token.lower(), tag) for token, tag in pairs]
            key = " ".join(token for token, _ in pairs)
            if key in seen_keys:
                continue
            seen_keys.add(key)
            sentences.append(pairs)
        result[split] = sentences
    return result


def _conll(sentences):
    return "".join("".join("%s\t%s\n" % pair for pair in sent) + "\n" for sent in sentences)


# ---------------------------------------------------------------------------------------------
# Tiny cuts for unit tests
# ---------------------------------------------------------------------------------------------

TINY_INTENTS = ["cancel_subscription", "card_lost", "delivery_late", "password_reset",
                "refund_request"]


def tiny_textcat(splits):
    """Cut a small 5-intent corpus: the first short one-topic messages of each intent.

    Returns {split: rows}; rows keep the order of the full split, so labels interleave.
    """
    out = {}
    for split, size in TINY_SIZES.items():
        per_label = size // len(TINY_INTENTS)
        taken = Counter()
        rows = []
        for row in splits[split]:
            label = row["label"]
            if label in TINY_INTENTS and taken[label] < per_label and row["plain"] \
                    and len(row["text"]) <= 80:
                taken[label] += 1
                rows.append(row)
        out[split] = rows
    return out


def tiny_ner(splits):
    """Cut a small NER corpus: short sentences with entities, every type in each split."""
    out = {}
    labels = ["PERSON", "ORG", "LOC", "PRODUCT", "DATE"]
    for split, size in TINY_SIZES.items():
        candidates = [s for s in splits[split]
                      if len(s) <= 18 and any(tag != "O" for _, tag in s)]
        chosen = []
        for label in labels:
            for sent in candidates:
                if sent not in chosen and any(tag == "B-" + label for _, tag in sent):
                    chosen.append(sent)
                    break
        for sent in candidates:
            if len(chosen) >= size:
                break
            if sent not in chosen:
                chosen.append(sent)
        chosen.sort(key=candidates.index)
        out[split] = chosen
    return out


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def build():
    """Return {relative path: file content} for every corpus file."""
    textcat = generate_textcat()
    ner = generate_ner()
    files = {}
    for split in ("train", "dev", "test"):
        files["support_intents/%s.jsonl" % split] = _jsonl(textcat[split])
        files["field_notes_ner/%s.conll" % split] = _conll(ner[split])
    tiny_t = tiny_textcat(textcat)
    tiny_n = tiny_ner(ner)
    for split in ("train", "dev", "test"):
        files["tiny_textcat/%s.jsonl" % split] = _jsonl(tiny_t[split])
        files["tiny_ner/%s.conll" % split] = _conll(tiny_n[split])
    return files


def stats(files):
    """Return a Markdown summary of split sizes and label distributions."""
    lines = []
    for path in sorted(files):
        content = files[path]
        if path.endswith(".jsonl"):
            rows = [json.loads(line) for line in content.splitlines()]
            counts = Counter(r["label"] for r in rows)
            lines.append("%s: %d examples, %d bytes"
                         % (path, len(rows), len(content.encode("utf8"))))
        else:
            sents = [s for s in content.split("\n\n") if s.strip()]
            tags = [line.split("\t")[1] for s in sents for line in s.splitlines()]
            counts = Counter(t[2:] for t in tags if t.startswith("B-"))
            lines.append("%s: %d sentences, %d tokens, %d entities, %d bytes"
                         % (path, len(sents), len(tags), sum(counts.values()),
                            len(content.encode("utf8"))))
        lines.append("    " + ", ".join("%s=%d" % kv for kv in sorted(counts.items())))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare a fresh generation with the files on disk")
    parser.add_argument("--stats", action="store_true", help="print counts per split")
    args = parser.parse_args(argv)
    files = build()
    if args.check:
        bad = [p for p, c in sorted(files.items())
               if not (HERE / p).exists() or (HERE / p).read_bytes() != c.encode("utf8")]
        for path in bad:
            print("differs: %s" % path)
        return 1 if bad else 0
    if args.stats:
        print(stats(files))
        return 0
    for path, content in sorted(files.items()):
        target = HERE / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode("utf8"))
    print("wrote %d files under %s" % (len(files), HERE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
