#!/usr/bin/python3
"""gen_sample.py - the bundled OSCAR-2301-shaped sample, and large corpora for benchmarks.

    /usr/bin/python3 data/gen_sample.py                  # rewrites data/sample/ and data/ut1/
    /usr/bin/python3 data/gen_sample.py --bench-bytes 1100000000 -o big.jsonl.zst

The sample is deterministic (fixed seed, no clock, no network): a few hundred
English web documents written from the phrase bank below, in the shape of
OSCAR 23.01's en_meta files (the dataset card of oscar-corpus/OSCAR-2301): content,
warc_headers, metadata with identification, harmful_pp, tlsh,
quality_warnings, categories and sentence_identifications.  Some documents are
built so that exactly one rule of the paper drops them: a UT1 category in the
metadata, harmful_pp out of range (at both bounds, null, missing), a quality
warning, or a URL that only the UT1 lists in data/ut1/ catch (a domain and its
subdomains, a url prefix, an expression).  Others sit just inside the bounds
or carry a category that is not blocked, and are kept.

Written besides the sample: data/sample/expected_kept.txt, the warc-record-ids
that the paper's rules plus data/ut1 keep, in order, and expected_stats.json,
the count of documents each rule drops, both computed here with the rules
stated independently of oscar-filter (tests/pipe_test.sh compares).

--bench-bytes writes a large corpus of the same shape fast (a pool of
sentences drawn once, then documents assembled from it, with made-up rare
words so that the tokenizer sees a long tail), zstd-compressed with
python-zstandard, for bench/pipe_bench.sh.
"""
import argparse
import hashlib
import json
import os
import random
import re
import sys

# ----------------------------------------------------------------------------- phrase bank

NAMES = ["Maria", "James", "Aisha", "Tom", "Priya", "Lukas", "Chen", "Sofia", "David", "Fatima", "Noah",
         "Emma", "Kenji", "Olivia", "Mateo", "Grace", "Samuel", "Hannah", "Ravi", "Chloe", "Daniel", "Zoe"]
SURNAMES = ["Johnson", "Okafor", "Nguyen", "Schmidt", "Patel", "Garcia", "Kowalski", "Brown", "Murphy",
            "Silva", "Andersen", "Tanaka", "Rossi", "Dubois", "Walker", "Hughes", "Fischer", "Lee"]
CITIES = ["Portland", "Leeds", "Austin", "Melbourne", "Toronto", "Dublin", "Denver", "Bristol", "Auckland",
          "Cleveland", "Glasgow", "Halifax", "Sacramento", "Brighton", "Cork", "Tucson", "Norwich", "Ottawa"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]

TOPICS = {
    "cooking": {
        "titles": ["Easy {dish} for busy weeknights", "How I finally got my {dish} right",
                   "A {dish} recipe the whole family will love", "Five tips for a better {dish}"],
        "fill": {"dish": ["lentil soup", "banana bread", "vegetable curry", "roast chicken", "tomato pasta",
                          "sourdough loaf", "apple crumble", "fish tacos", "mushroom risotto", "pancakes"],
                 "ing": ["garlic", "fresh basil", "brown butter", "smoked paprika", "lemon zest", "ginger",
                         "toasted cumin", "a pinch of salt", "grated parmesan", "coconut milk"]},
        "sentences": [
            "Start by heating a splash of olive oil in a heavy pan over medium heat.",
            "The secret, as my grandmother always said, is {ing}.",
            "You can make the {dish} a day ahead and keep it in the fridge.",
            "Don't rush this step: let the onions soften for at least {n} minutes.",
            "If the sauce looks too thick, add a little water and stir well.",
            "This {dish} freezes well, so I usually cook a double batch.",
            "My kids ask for this every {day}, and honestly I don't mind.",
            "Season to taste, then finish with {ing} just before serving.",
            "I tested this recipe {n} times before I was happy with the texture.",
            "Leftovers make a great lunch the next day, warmed up or cold.",
            "Use whatever vegetables you have in the fridge; nothing here is set in stone.",
            "Bake it for {n} minutes, or until the top is golden and firm to the touch.",
            "A good knife and a large cutting board will save you a lot of time.",
            "Readers in {city} tell me they swap the butter for olive oil, and it works just as well.",
        ]},
    "gardening": {
        "titles": ["Growing {plant} in a small garden", "What I learned from a year of growing {plant}",
                   "When to plant {plant}: a simple guide"],
        "fill": {"plant": ["tomatoes", "runner beans", "lavender", "strawberries", "garlic", "sunflowers",
                           "courgettes", "rosemary", "potatoes", "sweet peas"]},
        "sentences": [
            "Most {plant} need at least six hours of direct sunlight a day.",
            "Water deeply once or twice a week rather than a little every day.",
            "I sowed my first seeds indoors in {month}, about {n} weeks before the last frost.",
            "A layer of mulch keeps the soil moist and the weeds down.",
            "Slugs were a real problem last year, so this time I tried copper tape around the beds.",
            "Don't worry if the leaves turn yellow at the bottom; that is normal late in the season.",
            "Our allotment in {city} gets a lot of wind, so everything tall needs a stake.",
            "Compost from the kitchen has made a visible difference to the soil.",
            "Pick the {plant} often and the plants will keep producing for weeks.",
            "A neighbour gave me cuttings, and {n} of them took root within a month.",
            "Raised beds warm up faster in spring and drain better after heavy rain.",
            "Keep a notebook: next year you will be glad you wrote down what worked.",
        ]},
    "travel": {
        "titles": ["Three days in {city}: what to see and where to eat", "A weekend in {city} on a budget",
                   "{city} in {month}: my honest travel notes"],
        "fill": {},
        "sentences": [
            "We arrived in {city} on a rainy {day} evening and went straight to dinner.",
            "The old town is small enough to explore on foot in an afternoon.",
            "Public transport is cheap and reliable; a day pass costs about {n} dollars.",
            "Book the museum tickets online, because the queue on weekends is long.",
            "Our favourite meal was in a tiny family restaurant near the harbour.",
            "If you only have one morning, walk along the river before the crowds arrive.",
            "The weather in {month} was mild, but we still needed a warm jacket at night.",
            "We stayed in a guesthouse run by a lovely couple called {name} and {name2}.",
            "The view from the hill at sunset was worth every step of the climb.",
            "Most places accept cards, although a few market stalls only take cash.",
            "I would skip the tourist shops on the main street and explore the side streets instead.",
            "The train from the airport to the centre takes about {n} minutes.",
        ]},
    "news": {
        "titles": ["Council approves new cycle lanes in {city}", "Local library to extend opening hours",
                   "{city} residents raise concerns over bus route changes"],
        "fill": {"vote": ["nine to two", "seven to four", "six to five", "eight to three"]},
        "sentences": [
            "The city council voted {vote} on {day} to approve the plan.",
            "Residents of {city} will be able to comment on the proposal until the end of {month}.",
            "Councillor {name} {surname} said the decision was long overdue.",
            "The project is expected to cost around {n} million dollars over three years.",
            "Local businesses have mixed feelings about the changes to parking on the high street.",
            "A public meeting will be held at the community centre next {day} at 7 pm.",
            "According to the latest figures, the number of visitors rose by {n} percent last year.",
            "Opponents argue that the money would be better spent on repairing existing roads.",
            "The library will now open on Sunday afternoons, starting in {month}.",
            "Officials said work could begin as early as next spring if funding is confirmed.",
            "\"We listened carefully to what people told us,\" {name} {surname} told reporters.",
            "The decision follows a consultation that drew more than {n} hundred responses.",
        ]},
    "tech": {
        "titles": ["How to fix a slow laptop without buying a new one", "A beginner's guide to backing up your photos",
                   "Why your Wi-Fi drops out, and what to do about it"],
        "fill": {},
        "sentences": [
            "First, check how much free space is left on your hard drive.",
            "Restarting the router fixes more problems than most people expect.",
            "Keep your operating system up to date, since updates often include security fixes.",
            "I recommend keeping at least two copies of important files in different places.",
            "If a program starts automatically at boot and you never use it, disable it.",
            "An external drive costs less than {n} dollars and can save years of memories.",
            "Cloud storage is convenient, but read the terms before you upload everything.",
            "Use a password manager instead of reusing the same password everywhere.",
            "Move the router away from thick walls and metal objects if you can.",
            "My old laptop felt new again after I replaced the hard disk with a solid state drive.",
            "Before you change any settings, write down what they were so you can undo it.",
            "If nothing else works, a clean reinstall often takes less than an hour.",
        ]},
    "finance": {
        "titles": ["How we paid off {n} thousand dollars of debt", "A simple monthly budget that actually works",
                   "Saving for a house: what I wish I had known"],
        "fill": {},
        "sentences": [
            "Write down everything you spend for one month; the results may surprise you.",
            "We set up an automatic transfer to our savings account on the first of every month.",
            "Cooking at home instead of ordering takeaway saved us about {n} dollars a month.",
            "Pay off the card with the highest interest rate first.",
            "An emergency fund of three to six months of expenses gives real peace of mind.",
            "It took us {n} months, but we finally cleared the last of the loan in {month}.",
            "Compare insurance quotes every year rather than letting the policy renew automatically.",
            "Small subscriptions add up quickly, so review them twice a year.",
            "My friend {name} taught me to wait a week before any purchase over fifty dollars.",
            "None of this is financial advice; it is simply what worked for our family.",
        ]},
    "fitness": {
        "titles": ["Couch to 5K: my first eight weeks", "A twenty-minute workout you can do at home",
                   "How I started running again at forty"],
        "fill": {},
        "sentences": [
            "I started with just {n} minutes of walking every morning.",
            "Warm up properly, even if you only have a short time to train.",
            "By week four I could run for ten minutes without stopping.",
            "Rest days are part of the plan, not a sign of weakness.",
            "Drink water before you feel thirsty, especially in summer.",
            "A good pair of shoes made a bigger difference than any gadget.",
            "I joined a running club in {city}, and the company kept me going.",
            "Stretch gently after each session and never push through sharp pain.",
            "On {day} mornings we do squats, push-ups and planks in three short rounds.",
            "Progress is slow at first, then suddenly you notice how much easier the stairs are.",
        ]},
    "science": {
        "titles": ["Why is the sky blue? A short explanation", "How vaccines train the immune system",
                   "What makes bread rise: the chemistry of yeast"],
        "fill": {},
        "sentences": [
            "Sunlight contains every colour of the visible spectrum.",
            "Shorter wavelengths are scattered by the air much more strongly than longer ones.",
            "Yeast feeds on sugars and releases carbon dioxide as it does so.",
            "The gas is trapped by the gluten network, which is why the dough expands.",
            "The immune system learns to recognise a harmless piece of the virus.",
            "Scientists repeat experiments many times before they trust a result.",
            "In {year}, researchers published a study involving more than {n} thousand participants.",
            "This is a simplified picture, and the real process involves many more steps.",
            "Temperature matters: at around {n} degrees the reaction slows down noticeably.",
            "If you want to read further, your local library is a great place to start.",
        ]},
    "history": {
        "titles": ["The forgotten history of the {city} canal", "Life in a small town in {year}",
                   "How the railway changed our village"],
        "fill": {},
        "sentences": [
            "The canal was completed in {year} after almost a decade of work.",
            "Hundreds of workers came from across the country to dig it by hand.",
            "Old photographs in the town museum show barges loaded with coal and timber.",
            "When the railway arrived, traffic on the canal declined within a generation.",
            "Local historian {name} {surname} has spent {n} years collecting letters from the period.",
            "Many of the original buildings still stand, although most are now private homes.",
            "The records from that time are incomplete, so some details remain uncertain.",
            "Every {month}, volunteers organise a walk along the old towpath.",
            "Children at the village school learned to read from a single shared book.",
            "Today the area is a quiet nature reserve, popular with walkers and birdwatchers.",
        ]},
    "reviews": {
        "titles": ["Review: a budget {product} that surprised me", "Is this {product} worth the money?",
                   "Six months with my new {product}"],
        "fill": {"product": ["coffee grinder", "electric kettle", "office chair", "pair of headphones",
                             "robot vacuum", "rice cooker", "desk lamp", "rain jacket", "backpack"]},
        "sentences": [
            "I bought this {product} in {month} after my old one finally gave up.",
            "Out of the box, it feels solid and well made for the price.",
            "Setup took less than {n} minutes and the instructions were clear.",
            "After daily use for a few months, it still works as well as on the first day.",
            "The only real downside is that it is a little louder than I expected.",
            "Customer service replied within a day when I had a question about the warranty.",
            "For around {n} dollars, I think it is excellent value.",
            "If you need something for heavy professional use, look at the more expensive models.",
            "My partner was sceptical at first but now uses it more than I do.",
            "Overall I would give it four stars out of five.",
        ]},
    "sports": {
        "titles": ["{city} United edge past rivals in late thriller", "Match report: a draw that felt like a win",
                   "Youth team celebrates a remarkable season"],
        "fill": {},
        "sentences": [
            "The home side took the lead after {n} minutes with a header from a corner.",
            "Rain made the pitch heavy and the second half was scrappy.",
            "Captain {name} {surname} was named player of the match.",
            "The visitors equalised just before half time against the run of play.",
            "A crowd of more than {n} thousand packed the stadium on {day} night.",
            "The coach praised the team's effort but admitted there is work to do.",
            "With five games left, the title race is wide open.",
            "The youth team won {k} of their last twelve matches.",
            "Supporters stayed long after the final whistle to applaud the players.",
            "The next fixture is away in {city} on {day}.",
        ]},
    "pets": {
        "titles": ["Adopting an older dog: our story", "How to help a nervous cat settle in",
                   "What we learned from fostering kittens"],
        "fill": {"pet": ["Biscuit", "Luna", "Max", "Pepper", "Milo", "Daisy", "Oscar", "Willow"]},
        "sentences": [
            "We adopted {pet} from a shelter in {city} when she was nine years old.",
            "Give a new cat a quiet room of its own for the first few days.",
            "Older dogs are often calmer and already house trained.",
            "{pet} was shy at first, but now follows us from room to room.",
            "A regular routine for meals and walks helps an anxious animal feel safe.",
            "Our vet recommended a special diet, and the change was remarkable.",
            "Fostering is hard work, but watching them go to good homes makes it worth it.",
            "Never punish a frightened animal; patience works far better.",
            "We walk {pet} twice a day, rain or shine.",
        ]},
}

FILL = {"name": NAMES, "name2": NAMES, "surname": SURNAMES, "city": CITIES, "day": DAYS, "month": MONTHS}
SLOT = re.compile(r"\{(\w+)\}")

EXTRAS = [  # non-ASCII, quotes and escapes, as real pages have them
    "The café on the corner serves a very good crème brûlée.",
    "She described the trip as “absolutely unforgettable” — and I agree.",
    "Prices start at €{n} per night, breakfast included.",
    "He said: \"Don't forget the \\ backslash in the path.\"",
    "Our naïve first attempt failed, but the second one worked 🙂",
    "Tickets cost £{n}, or ¥{n}00 if you book from Japan.",
    "Temperatures reached {n}°C by midday.",
]


def fill(rng, s, topic_fill):
    def rep(m):
        k = m.group(1)
        if k == "n" or k == "m":
            return str(rng.choice([2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 45, 60, 90]))
        if k == "k":
            return str(rng.randrange(2, 12))
        if k == "year":
            return str(rng.randrange(1820, 2023))
        pool = topic_fill.get(k) or FILL.get(k)
        return rng.choice(pool) if pool else m.group(0)
    return SLOT.sub(rep, s)


def make_text(rng, topic, npar=None):
    t = TOPICS[topic]
    lines = [fill(rng, rng.choice(t["titles"]), t["fill"])]
    # each sentence of the topic at most once, in an order of its own, cut into paragraphs
    sents = rng.sample(t["sentences"], rng.randrange(len(t["sentences"]) * 2 // 3, len(t["sentences"]) + 1))
    npar = npar or rng.randrange(2, 6)
    if npar == 1:
        sents = sents[:2]
    cuts = sorted(rng.sample(range(1, len(sents)), npar - 1)) if npar > 1 else []
    for a, b in zip([0] + cuts, cuts + [len(sents)]):
        par = [fill(rng, x, t["fill"]) for x in sents[a:b]]
        if rng.random() < 0.12:
            par.insert(rng.randrange(len(par) + 1), fill(rng, rng.choice(EXTRAS), {}))
        lines.append(" ".join(par))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- document shape

def uuid(rng):
    h = "%032x" % rng.getrandbits(128)
    return "<urn:uuid:%s-%s-%s-%s-%s>" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def make_doc(rng, content, url, harmful_pp=250.0, warnings=None, categories=None, drop_keys=(),
             key_order=0, ascii_only=False):
    nlines = content.count("\n") + 1
    sha1 = hashlib.sha1(content.encode()).hexdigest()
    warc = {
        "warc-record-id": uuid(rng),
        "warc-date": "2022-%02d-%02dT%02d:%02d:%02dZ" % (rng.randrange(11, 13), rng.randrange(1, 29),
                                                         rng.randrange(24), rng.randrange(60), rng.randrange(60)),
        "content-type": "text/plain",
        "content-length": str(len(content.encode())),
        "warc-type": "conversion",
        "warc-identified-content-language": rng.choice(["eng", "eng,fra", "eng,spa", None]),
        "warc-refers-to": uuid(rng),
        "warc-target-uri": url,
        "warc-block-digest": "sha1:" + sha1[:32].upper(),
    }
    meta = {
        "identification": {"label": "en", "prob": round(rng.uniform(0.80, 0.99), 6)},
        "harmful_pp": harmful_pp,
        "tlsh": "tlsh:T1" + "%068X" % rng.getrandbits(272) if rng.random() < 0.9 else None,
        "quality_warnings": warnings,
        "categories": categories,
        "sentence_identifications": [{"label": "en", "prob": round(rng.uniform(0.7, 0.99), 6)}
                                     if rng.random() < 0.93 else None for _ in range(nlines)],
    }
    for k in drop_keys:
        meta.pop(k, None)
    doc = {"content": content, "warc_headers": warc, "metadata": meta}
    if key_order == 1:   # OSCAR does not promise key order
        doc = {"metadata": meta, "content": content, "warc_headers": warc}
    elif key_order == 2:
        doc = {"warc_headers": warc, "metadata": dict(reversed(list(meta.items()))), "content": content}
    return doc, json.dumps(doc, ensure_ascii=ascii_only)


# ----------------------------------------------------------------------------- UT1 folder

BLOCKED = ["agressif", "adult", "cryptojacking", "dangerous_material", "phishing", "warez", "ddos",
           "hacking", "malware", "mixed_adult", "sect"]

UT1 = {  # category -> {list: entries}; names under .example / .test are reserved and never resolve
    "adult": {"domains": ["# UT1-shaped sample list (fictional hosts)", "spicy-chat.example", "nightclub-cams.test",
                          "adult-videos.example.net  "],
              "urls": ["free-hosting.example.org/~lounge", "mixedsite.example.com/members/private"],
              "expressions": ["(^|[-./])x{3}[-./]"]},
    "agressif": {"domains": ["hate-forum.example"]},
    "cryptojacking": {"domains": ["coin-miner-js.example"], "urls": ["cdn.example.org/miner"]},
    "dangerous_material": {"domains": ["homemade-explosives.test"]},
    "phishing": {"domains": ["paypa1-secure.example", "bank-verify-login.test"],
                 "urls": ["secure-login.example.net/verify"]},
    "warez": {"domains": ["cracked-games.example"], "expressions": ["download-?free-?keygen"]},
    "ddos": {"domains": ["booter-stresser.example"]},
    "hacking": {"domains": ["exploit-kits.test"]},
    "malware": {"domains": ["update-flash-player.example"], "urls": ["files.example.org/payload/"]},
    "mixed_adult": {"domains": ["mixed-forum.example"]},
    "sect": {"domains": ["true-path-fellowship.example"]},
    "shopping": {"domains": ["bookshop.example", "garden-supplies.example"]},   # not blocked: must not drop
}


def ut1_matches(url, cats):
    """The UT1 rule, stated independently: host (lower, no port, no trailing dot) equals a domain
    entry or ends with '.' + entry; host+path starts with a url entry (host part matched like a
    domain); an expression is searched, caselessly, in the whole URL."""
    m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)([^#]*)", url)
    if not m:
        return False
    host = m.group(1).rsplit("@", 1)[-1].split(":")[0].rstrip(".").lower()
    path = m.group(2)
    def host_in(h, d):
        return h == d or h.endswith("." + d)
    for c in cats:
        lists = UT1.get(c, {})
        for d in lists.get("domains", []):
            d = d.strip()
            if d and not d.startswith("#") and host_in(host, d):
                return True
        for u in lists.get("urls", []):
            u = u.strip()
            if not u or u.startswith("#"):
                continue
            uh, _, up = u.partition("/")
            if host_in(host, uh) and path.startswith("/" + up):
                return True
        for e in lists.get("expressions", []):
            if re.search(e, url, re.I):
                return True
    return False


def drop_reasons(doc, url):
    """Each rule that drops the document (the sample's cases trip one each)."""
    meta = doc.get("metadata", {})
    pp = meta.get("harmful_pp")
    out = []
    if any(c in BLOCKED for c in meta.get("categories") or []):
        out.append("categories")
    if not (5.0 < (100000.0 if pp is None else pp) < 100000.0):
        out.append("harmful_pp")
    if meta.get("quality_warnings"):
        out.append("quality_warnings")
    if ut1_matches(url, BLOCKED):
        out.append("ut1")
    return out


def paper_keeps(doc):
    """The three rules of the paper (PAPER.md, Data), as the authors' script reads them."""
    meta = doc.get("metadata", {})
    cats = meta.get("categories") or []
    if any(c in BLOCKED for c in cats):
        return False
    pp = meta.get("harmful_pp")
    pp = 100000.0 if pp is None else pp
    if not (5.0 < pp < 100000.0):
        return False
    if meta.get("quality_warnings"):
        return False
    return True


# ----------------------------------------------------------------------------- the sample

CLEAN_HOSTS = ["www.{t}-notes.example", "{t}.blog.example", "www.{city}-gazette.example", "community.example.org",
               "www.{t}hub.example", "news.{city}.example", "bookshop.example", "shop.garden-supplies.example"]


def clean_url(rng, topic):
    host = rng.choice(CLEAN_HOSTS).format(t=topic, city=rng.choice(CITIES).lower())
    slug = "-".join(rng.sample(["guide", "notes", "story", "tips", "week", "review", "update", "how-to", "ideas"], 2))
    return "https://%s/%d/%02d/%s-%d" % (host, 2022, rng.randrange(1, 13), slug, rng.randrange(1000))


def generate_sample(outdir, ut1dir, ndocs=400):
    rng = random.Random(2301)
    topics = sorted(TOPICS)
    # (how many, what to change) - each case is dropped by exactly one rule, or kept near a bound
    cases = (
        [("cat", dict(categories=[c])) for c in ["adult", "phishing", "malware", "warez", "sect", "mixed_adult"]]
        + [("cat", dict(categories=["blog", "hacking"]))]
        + [("pp", dict(harmful_pp=v)) for v in [5.0, 3.75, 100000.0, 250000.5, 0.0, -12.0]]
        + [("pp", dict(harmful_pp=None)), ("pp", dict(harmful_pp=None)), ("pp", dict(drop_keys=("harmful_pp",)))]
        + [("warn", dict(warnings=w)) for w in [["tiny"], ["short_sentences"], ["header"], ["footer"],
                                                ["noisy"], ["header", "footer"], ["short_sentences", "noisy"]]]
        + [("url", dict(url=u)) for u in [
            "https://spicy-chat.example/rooms/lobby", "http://www.spicy-chat.example/profile?id=12",
            "https://live.nightclub-cams.test:8443/", "https://ADULT-VIDEOS.example.net./index.html",
            "https://secure-login.example.net/verify/account?session=77", "http://files.example.org/payload/setup.exe",
            "https://free-hosting.example.org/~lounge/gallery", "http://mirror.example.com/download-free-keygen/app.zip",
            "https://www.example.org/xxx/", "https://cdn.example.org/miner.js",
            "https://paypa1-secure.example/login", "https://blog.cracked-games.example/new",
            "https://true-path-fellowship.example/join"]]
        + [("keep", dict(categories=["blog"])), ("keep", dict(categories=["shopping", "press"])),
           ("keep", dict(categories=[])), ("keep", dict(harmful_pp=5.0001)), ("keep", dict(harmful_pp=99999.99)),
           ("keep", dict(harmful_pp=7)), ("keep", dict(harmful_pp=1.5e3)), ("keep", dict(warnings=[])),
           ("keep", dict(drop_keys=("quality_warnings",))), ("keep", dict(drop_keys=("categories",))),
           ("keep", dict(url="https://secure-login.example.net/about")),          # url prefix does not match
           ("keep", dict(url="https://notspicy-chat.example/")),                  # not a subdomain
           ("keep", dict(url="https://www.example.org/xxxl-sweaters/")),          # expression does not match
           ("keep", dict(url="https://bookshop.example/catalogue")),              # category not blocked
           ("keep", dict(url="https://files.example.org/payloads-of-fun/"))]      # prefix is /payload/
    )
    slots = rng.sample(range(ndocs), len(cases))
    special = dict(zip(slots, cases))
    lines, kept = [], []
    counts = {"categories": 0, "harmful_pp": 0, "quality_warnings": 0, "ut1": 0}
    for i in range(ndocs):
        topic = topics[i % len(topics)] if i % 5 else rng.choice(topics)
        kind, kw = special.get(i, ("plain", {}))
        kw = dict(kw)
        url = kw.pop("url", None) or clean_url(rng, topic)
        pp = kw.pop("harmful_pp", round(rng.uniform(40, 3000), 4))
        npar = 1 if kw.get("warnings") == ["tiny"] else None
        content = make_text(rng, topic, npar)
        doc, line = make_doc(rng, content, url, harmful_pp=pp, key_order=i % 7 % 3 if i % 7 < 3 else 0,
                             ascii_only=(i % 4 == 1), **kw)
        lines.append(line)
        for reason in drop_reasons(doc, url):
            counts[reason] += 1
        if paper_keeps(doc) and not ut1_matches(url, BLOCKED):
            kept.append(doc["warc_headers"]["warc-record-id"])
        elif kind in ("plain", "keep"):
            sys.exit("gen_sample: document %d (%s) should be kept" % (i, kind))
    data = ("\n".join(lines) + "\n").encode()
    import zstandard
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "en_meta_part_1.jsonl.zst"), "wb") as f:
        f.write(zstandard.ZstdCompressor(level=19).compress(data))
    with open(os.path.join(outdir, "expected_kept.txt"), "w") as f:
        f.write("\n".join(kept) + "\n")
    with open(os.path.join(outdir, "expected_stats.json"), "w") as f:
        json.dump({"documents": ndocs, "kept": len(kept), "dropped": ndocs - len(kept), "dropped_by": counts}, f)
        f.write("\n")
    for cat, lists in UT1.items():
        d = os.path.join(ut1dir, cat)
        os.makedirs(d, exist_ok=True)
        for name, entries in lists.items():
            with open(os.path.join(d, name), "w") as f:
                f.write("\n".join(entries) + "\n")
        with open(os.path.join(d, "usage"), "w") as f:
            f.write("white\n" if cat == "shopping" else "black\n")
    print("gen_sample: %d documents (%d bytes uncompressed), %d kept by the rules, in %s; UT1 lists in %s"
          % (ndocs, len(data), len(kept), outdir, ut1dir))


# ----------------------------------------------------------------------------- benchmark corpus

SYL = ["ka", "lo", "mi", "tra", "ven", "dor", "shi", "qu", "zel", "bro", "nix", "sta", "pel", "gri", "mon", "tav"]


def generate_bench(out, nbytes, seed=7):
    """OSCAR-shaped JSONL.zst of about nbytes uncompressed, fast: sentences drawn once into a pool,
    documents assembled from it; about 15% dropped by the filter rules, 3% of words made up."""
    import zstandard
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    pool = {}
    for t in topics:
        sents = []
        for _ in range(25000):   # a pool larger than zstd's window, so that the ratio stays near real text's
            s = fill(rng, rng.choice(TOPICS[t]["sentences"]), TOPICS[t]["fill"])
            if rng.random() < 0.35:   # a long tail of rare words, as on the web
                w = s.split(" ")
                k = rng.randrange(len(w))
                w[k] = "".join(rng.choice(SYL) for _ in range(rng.randrange(2, 5)))
                s = " ".join(w)
            sents.append(s)
        pool[t] = sents
    extras = [fill(rng, e, {}) for e in EXTRAS for _ in range(3)]
    cctx = zstandard.ZstdCompressor(level=3, threads=-1)
    written = 0
    ndoc = 0
    with open(out + ".tmp", "wb") as f, cctx.stream_writer(f) as z:
        buf = []
        while written < nbytes:
            t = topics[ndoc % len(topics)]
            sents = pool[t]
            paras = []
            for _ in range(rng.randrange(2, 9)):
                p = " ".join(rng.choices(sents, k=rng.randrange(2, 7)))
                if rng.random() < 0.1:
                    p += " " + rng.choice(extras)
                paras.append(p)
            content = "\n".join(paras)
            r = rng.random()
            pp = round(rng.uniform(20, 4000), 3) if r > 0.05 else rng.choice([None, 2.5, 150000.0])
            warn = None if rng.random() > 0.07 else [rng.choice(["tiny", "noisy", "header", "short_sentences"])]
            cats = None if rng.random() > 0.03 else [rng.choice(["adult", "phishing", "blog", "malware"])]
            rid = "%032x" % rng.getrandbits(128)
            line = json.dumps({
                "content": content,
                "warc_headers": {"warc-record-id": "<urn:uuid:%s-%s-%s-%s-%s>" % (rid[:8], rid[8:12], rid[12:16], rid[16:20], rid[20:]),
                                 "warc-date": "2022-11-26T09:45:47Z", "content-type": "text/plain",
                                 "content-length": str(len(content)), "warc-type": "conversion",
                                 "warc-identified-content-language": "eng", "warc-refers-to": "<urn:uuid:00000000-0000-0000-0000-000000000000>",
                                 "warc-target-uri": "https://www.%s-%d.example/page/%d" % (t, ndoc % 5000, ndoc),
                                 "warc-block-digest": "sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
                "metadata": {"identification": {"label": "en", "prob": 0.93}, "harmful_pp": pp,
                             "tlsh": "tlsh:T1" + rid * 2, "quality_warnings": warn, "categories": cats,
                             "sentence_identifications": [{"label": "en", "prob": 0.95}] * len(paras)}},
                ensure_ascii=False) + "\n"
            b = line.encode()
            buf.append(b)
            written += len(b)
            ndoc += 1
            if len(buf) >= 2000:
                z.write(b"".join(buf)); buf = []
        if buf:
            z.write(b"".join(buf))
    os.replace(out + ".tmp", out)
    print("gen_sample: %d documents, %d bytes uncompressed -> %s (%d bytes)" % (ndoc, written, out, os.path.getsize(out)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--sample-dir", default=os.path.join(here, "sample"))
    ap.add_argument("--ut1-dir", default=os.path.join(here, "ut1"))
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--bench-bytes", type=int, help="write a benchmark corpus of about this many uncompressed bytes")
    ap.add_argument("-o", "--out", help="output file for --bench-bytes")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    if a.bench_bytes:
        if not a.out:
            ap.error("--bench-bytes needs -o FILE")
        generate_bench(a.out, a.bench_bytes, a.seed)
    else:
        generate_sample(a.sample_dir, a.ut1_dir, a.docs)


if __name__ == "__main__":
    main()
