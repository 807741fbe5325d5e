"""Writes N generated news feeds (RSS and Atom, 20-50 items, ~40 KB each) into
WORK/www, a newshound config (WORK/newshound.toml, a Maildir channel and one keyword
rule) polling them from 250 loopback addresses, and an nginx config (WORK/nginx.conf)
serving them on PORT with real ETag / Last-Modified handling. Used by the benchmark
scripts beside it:

    python3 benches/make_feeds.py WORK N PORT
    TOPIC_RULES=10 python3 benches/make_feeds.py WORK N PORT   # and 10 topic rules
    SMALL_FEEDS=1 python3 benches/make_feeds.py WORK N PORT    # 5 items of ~20 words
                                                               # (~2 KB: 100,000 fit on disk)
"""
import os, random, sys
work, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(n)
words = ("security talks minister summit sanctions market election parliament energy "
         "border agreement ceasefire inflation budget court protest climate trade").split()
names = ["Lavrov", "Blinken", "NATO", "Scholz", "Macron", "Kyiv", "Geneva", "Beijing"]
os.makedirs(f"{work}/www", exist_ok=True)
def text(k):
    return " ".join(random.choice(words + names[:1] * 0) for _ in range(k))
feeds = []
for i in range(n):
    small = os.environ.get("SMALL_FEEDS") == "1"
    items = 5 if small else random.randint(20, 50)
    atom = i % 3 == 0
    body = []
    for j in range(items):
        title = f"{text(6).capitalize()} {random.choice(names) if random.random() < 0.05 else ''}".strip()
        summary = text(random.randint(15, 30) if small else random.randint(60, 140))
        if atom:
            body.append(f"<entry><id>urn:f{i}:{j}</id><title>{title}</title><updated>2026-11-28T10:00:00Z</updated>"
                        f"<link href='https://f{i}.example.org/{j}'/><summary>{summary}</summary></entry>")
        else:
            body.append(f"<item><guid>f{i}-{j}</guid><title>{title}</title><link>https://f{i}.example.org/{j}</link>"
                        f"<description>{summary}</description></item>")
    if atom:
        doc = ("<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
               f"<title>Feed {i}</title><id>urn:f{i}</id><updated>2026-11-28T10:00:00Z</updated>{''.join(body)}</feed>")
    else:
        doc = f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Feed {i}</title>{''.join(body)}</channel></rss>"
    with open(f"{work}/www/f{i}.xml", "w") as f:
        f.write(doc)
    host = f"127.0.1.{1 + i % 250}"
    feeds.append(f'[[feeds]]\nname = "f{i}"\nurl = "http://{host}:{port}/f{i}.xml"\n')
with open(f"{work}/newshound.toml", "w") as f:
    f.write('[daemon]\nstate_dir = "state"\n\n' + "\n".join(feeds) +
            '\n[channels.inbox]\ntype = "maildir"\npath = "alerts"\n\n'
            '[[rules]]\nname = "talks"\nkeywords = ["Lavrov", "Blinken", "NATO"]\nchannels = ["inbox"]\n')
    topics = [
        "Russia and the United States negotiate over security guarantees in Europe",
        "A central bank decides to raise, cut or hold its policy interest rate",
        "Wildfires burn homes and force evacuations",
        "Criminals lock a hospital's computers and demand a ransom",
        "Parliament votes on a new national budget",
        "A ceasefire is agreed between two warring sides",
        "Energy prices rise after a cut in gas supplies",
        "A court rules on a high-profile election dispute",
        "Climate negotiators agree on emission targets at a summit",
        "Governments impose new trade tariffs on imports",
    ]
    for k, about in enumerate(topics[: int(os.environ.get("TOPIC_RULES", "0"))]):
        f.write(f'\n[[rules]]\nname = "topic-{k}"\nabout = "{about}"\nchannels = ["inbox"]\n')
with open(f"{work}/nginx.conf", "w") as f:
    f.write(f"""worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log {work}/access.log;
  client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  types {{ application/rss+xml xml; }}
  server {{ listen 0.0.0.0:{port}; root {work}/www; etag on; }}
}}
""")
