#!/usr/bin/python3
"""Writes the long-context demo texts: an invented chronicle of the towns of a river valley.

Everything here is original (templates and word lists written for this project), so the texts
are public domain. The output is deterministic: a fixed-seed splitmix64 generator (written out,
not Python's `random`, whose algorithms may change between versions) drives every choice.
The texts are committed; run this only to regenerate them:

    /usr/bin/python3 demo/texts/generate_texts.py

Each text hides one "needle" sentence at a fixed depth, which the matching prompt file in
demo/prompts/ asks about, so a long-context run can be checked by reading the answer.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1


class Rng:
    """splitmix64: tiny, portable, and the same everywhere."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n

    def pick(self, items):
        return items[self.below(len(items))]

    def sample(self, items, k):
        pool = list(items)
        out = []
        for _ in range(min(k, len(pool))):
            out.append(pool.pop(self.below(len(pool))))
        return out

    def chance(self, percent):
        return self.below(100) < percent


def an(word):
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


def cap(text):
    return text[0].upper() + text[1:]


# --- word lists ------------------------------------------------------------------------------

TOWN_START = ["Ash", "Bram", "Cal", "Dun", "Elder", "Fen", "Gull", "Hal", "Ivy", "Kest", "Lark",
              "Marrow", "Nor", "Oak", "Pen", "Quill", "Rook", "Sel", "Thorn", "Ull", "Wren",
              "Yarrow", "Birch", "Cob", "Hazel", "Mill", "Stour", "Tarn", "Wick", "Holly"]
TOWN_END = ["ford", "dale", "mere", "wick", "stead", "holm", "ton", "by", "combe", "haven",
            "bridge", "field", "moor", "ley", "water", "gate", "well", "thorpe"]
FIRST = ["Agnes", "Bertram", "Cora", "Desmond", "Edith", "Florian", "Greta", "Hollis", "Ida",
         "Jasper", "Keziah", "Lionel", "Mabel", "Nathaniel", "Odile", "Percival", "Quentin",
         "Rosalind", "Silas", "Tabitha", "Ulric", "Vera", "Walter", "Winifred", "Ambrose",
         "Beatrix", "Cedric", "Dorothea", "Edmund", "Fenella", "Gideon", "Hester", "Isaac",
         "Josephine", "Leopold", "Matilda", "Ned", "Ottilie", "Phineas", "Ruth", "Samuel",
         "Theodora", "Oswin", "Clement", "Lettice", "Barnaby", "Imogen", "Rufus", "Sybil", "Tobias"]
FAMILY = ["Ashcombe", "Barrow", "Cartwright", "Dunmore", "Ellery", "Fairweather", "Goodfellow",
          "Hartley", "Ingram", "Jessop", "Kettering", "Lockwood", "Marsh", "Northcott",
          "Oakes", "Pellow", "Quarrington", "Redfern", "Stannard", "Thackeray", "Underhill",
          "Varnham", "Whitlock", "Yardley", "Appleby", "Brindle", "Coulter", "Drummond",
          "Fenwick", "Gallow", "Holloway", "Larkin", "Merriweather", "Pennyworth", "Rowntree",
          "Selby", "Tolliver", "Waverley", "Blackmore", "Crane"]
TRADES = ["weaver", "potter", "miller", "blacksmith", "cooper", "clockmaker", "glassblower",
          "bookbinder", "apothecary", "shipwright", "beekeeper", "mapmaker", "baker", "tanner",
          "candle maker", "rope maker", "stonemason", "fiddler", "schoolteacher", "ferryman",
          "shepherd", "brewer", "dyer", "saddler", "bell founder", "herbalist", "carpenter",
          "fisherman", "printer", "lamplighter"]
GOODS = ["wool", "salt", "honey", "barley", "copper pots", "smoked river fish", "slate",
         "cider", "linen", "beeswax candles", "painted maps", "glass beads", "cheese", "rope",
         "leather saddles", "dried herbs", "blue dye", "oak barrels", "iron nails", "paper",
         "woollen blankets", "pickled plums", "clay pipes", "lamp oil"]
LANDMARKS = ["an old stone bridge of seven arches", "a leaning bell tower", "a market hall roofed "
             "with green copper", "the ruins of an abbey on the hill", "a windmill with red sails",
             "a long harbour wall", "a library built of grey slate", "a round tower of river "
             "stone", "a covered well in the middle of the square", "a watermill with a wheel "
             "as tall as three men", "an inn with a sign shaped like a swan", "a chapel with "
             "windows of yellow glass", "a row of almshouses with crooked chimneys",
             "an orchard of ancient pear trees", "a toll house at the end of the causeway"]
FEATURES = ["the river bends twice before reaching the weir", "the hills close in on three "
            "sides", "the marshes begin just beyond the last houses", "an old road from the "
            "coast crosses the valley", "two streams meet below the church", "the forest comes "
            "down almost to the gardens", "the valley opens into wide water meadows",
            "the chalk downs rise steeply behind the rooftops", "the river widens into a "
            "shallow lake", "a line of beech trees shelters the town from the north wind"]
SEASONS = ["spring", "summer", "autumn", "winter"]
WEATHER = {
    "spring": ["a cold rain that lasted for nine days", "late frosts that blackened the "
               "blossom", "a mild spell that brought the swallows early", "a wind that "
               "smelled of wet earth and woodsmoke"],
    "summer": ["a drought that lowered the river to a trickle", "thunderstorms every "
               "evening for a week", "long golden evenings that kept the fields busy until "
               "dark", "a heat so heavy that the dogs slept all day in the shade"],
    "autumn": ["thick fogs that rolled up from the water meadows", "gales that stripped "
               "the orchards in a single night", "a warm, still month that ripened the late "
               "apples", "early floods that reached the steps of the market hall"],
    "winter": ["a hard frost that froze the mill pond solid", "snow that closed the high "
               "road for a fortnight", "grey, damp weeks when nothing seemed to dry",
               "clear, bitter nights when the stars looked close enough to touch"],
}
EVENTS = ["the great fair", "the raising of a new bridge", "a quarrel over grazing rights",
          "the arrival of a travelling theatre", "the founding of a small school",
          "the collapse of the old granary", "a wedding that the whole town attended",
          "the return of a sailor thought lost at sea", "a dispute between two rival bakeries",
          "the appearance of a comet over the hills", "the rebuilding of the church roof",
          "a lantern procession along the river", "the first printing of a town newspaper",
          "a contest between the bell ringers of two parishes", "the opening of a new mill"]
FOODS = ["barley bread", "eel pie", "honey cakes", "mutton stew", "baked apples with "
         "cream", "pea soup with mint", "cheese and onion pasties", "river trout fried in "
         "butter", "plum dumplings", "oat biscuits", "roasted chestnuts", "ginger beer"]
VIRTUES = ["patience", "stubbornness", "generosity", "quick temper", "dry humour",
           "careful memory", "gentle manner", "habit of arguing", "love of old songs",
           "talent for mending anything"]
OBJECTS = ["a brass telescope", "a ledger bound in green leather", "a pocket watch that ran "
           "fast", "a clay jug painted with fish", "a walking stick of blackthorn", "a map of "
           "the valley drawn in red ink", "a small wooden boat", "a lantern with a cracked "
           "pane", "a box of seeds labelled in a careful hand", "a fiddle with a carved scroll"]
ANIMALS = ["herons", "otters", "swans", "kingfishers", "barn owls", "hares", "foxes",
           "swallows", "badgers", "curlews"]
PLACES = ["the ford", "the high pasture", "the mill race", "the chalk pit", "the beech wood",
          "the old quarry", "the ferry landing", "the churchyard wall", "the willow island",
          "the toll road"]


class World:
    def __init__(self, rng):
        self.rng = rng
        names = [a + b for a in TOWN_START for b in TOWN_END]
        self.towns = []
        for name in rng.sample(names, 60):
            self.towns.append({
                "name": name,
                "landmark": rng.pick(LANDMARKS),
                "feature": rng.pick(FEATURES),
                "goods": rng.sample(GOODS, 3),
                "founded": 900 + rng.below(500),
                "animal": rng.pick(ANIMALS),
                "food": rng.pick(FOODS),
            })

    def person(self):
        return {"name": self.rng.pick(FIRST) + " " + self.rng.pick(FAMILY),
                "trade": self.rng.pick(TRADES), "virtue": self.rng.pick(VIRTUES),
                "object": self.rng.pick(OBJECTS), "age": 19 + self.rng.below(60)}


# --- paragraphs ------------------------------------------------------------------------------

def town_intro(r, w, t):
    s = [
        f"{t['name']} lies where {t['feature']}, and travellers usually notice "
        f"{t['landmark']} long before they reach the first houses.",
        r.pick([f"The town was founded, according to the parish records, in the year "
                f"{t['founded']}, though the older families claim it is far older than that.",
                f"Its charter dates from {t['founded']}, but the stones of its oldest walls "
                f"were already weathered when the charter was signed.",
                f"Nobody agrees on when the first settlers came; the most careful guess "
                f"puts it a little before {t['founded']}."]),
        r.pick([f"For generations its people have lived by trading {t['goods'][0]} and "
                f"{t['goods'][1]}, and in good years they also send {t['goods'][2]} down "
                f"the river.",
                f"The market is known for {t['goods'][0]}, although merchants from the coast "
                f"come mostly for the {t['goods'][1]}.",
                f"Most households keep a small garden, and almost every family has someone "
                f"who works with {t['goods'][0]} or {t['goods'][2]}."]),
        r.pick([f"In the evenings, {t['animal']} can be seen along the banks, and children "
                f"are taught never to disturb them.",
                f"The {t['animal']} that live near the water are treated almost as "
                f"neighbours, and there is a saying that the town will last as long as they "
                f"stay.",
                f"Visitors are often surprised by the number of {t['animal']}, which seem "
                f"quite unafraid of people."]),
        r.pick([f"The local dish is {t['food']}, served at every festival and argued about "
                f"in every kitchen.",
                f"Ask anyone in {t['name']} for a good meal and you will be offered "
                f"{t['food']}, usually with a long explanation of the right way to make it.",
                f"No visit is complete without {t['food']}, which the inns serve from early "
                f"autumn until the spring lambing."]),
    ]
    if r.chance(50):
        s.append(r.pick([
            "The streets are narrow and uneven, but they are swept every morning.",
            "On market days the square is so crowded that carts must wait at the edge of town.",
            "The houses are built of local stone, and their roofs are patched with slate of "
            "every shade of grey.",
            "A single lamp burns all night at the crossroads, tended by the town in turns."]))
    return " ".join(s)


def portrait(r, w, t):
    p = w.person()
    first = p["name"].split()[0]
    s = [
        r.pick([f"Among the people of {t['name']}, few were better known than {p['name']}, "
                f"{an(p['trade'])} remembered for {p['virtue']}.",
                f"{p['name']} worked as {an(p['trade'])} in {t['name']} for most of a long "
                f"life, and people still speak of that {p['virtue']}.",
                f"When the older residents of {t['name']} tell stories, {p['name']}, the "
                f"{p['trade']}, appears in a surprising number of them."]),
        r.pick([f"At the age of {p['age']}, {first} owned little more than {p['object']} "
                f"and a room above the {r.pick(['bakery', 'forge', 'inn', 'chandlery', 'mill'])}.",
                f"{first} always carried {p['object']}, and claimed it had been a gift from "
                f"a stranger who never came back to the valley.",
                f"Visitors to the workshop remember {p['object']} hanging by the door, "
                f"although nobody ever saw it used."]),
        r.pick([f"Every morning {first} walked to {r.pick(PLACES)} before starting work, in "
                f"all weathers and without exception.",
                f"{first} kept careful notes of the weather, the price of {r.pick(GOODS)} "
                f"and the comings and goings on the river.",
                f"It was said that {first} could tell the time of day from the sound of the "
                f"mill alone."]),
        r.pick([f"During {r.pick(EVENTS)}, it was {first} who kept everyone calm and "
                f"found work for idle hands.",
                f"When {r.pick(EVENTS)} divided the town, {first} refused to take sides and "
                f"was trusted by both.",
                f"The story most often told is of {r.pick(EVENTS)}, when {first} worked for "
                f"three days without sleep."]),
        r.pick([f"{first} died in the year {t['founded'] + 300 + r.below(400)} and was "
                f"buried near {r.pick(PLACES)}.",
                f"Even now, a bench near {r.pick(PLACES)} is called by {first}'s name.",
                f"A younger relative continued the trade, but people said the work was "
                f"never quite the same.",
                f"The workshop passed to an apprentice, who kept {first}'s tools exactly "
                f"where they had always hung.",
                f"When {first} died, the {t['animal']} were seen on the church roof, and "
                f"some people still believe that meant something.",
                f"{first} left no children, but half the town claimed to have learned "
                f"something from that {p['virtue']}.",
                f"In old age {first} moved to {r.pick(w.towns)['name']}, but asked to be "
                f"buried at home, and was."]),
    ]
    return " ".join(s)


def season(r, w, t):
    name = r.pick(SEASONS)
    weather = r.pick(WEATHER[name])
    year = t["founded"] + 200 + r.below(500)
    s = [
        f"The {name} of {year} is still remembered in {t['name']} for {weather}.",
        r.pick([f"The price of {t['goods'][0]} rose sharply, and several families had to "
                f"sell what they had saved for the winter.",
                f"The harvest was smaller than usual, but nobody went hungry, thanks to the "
                f"stores kept in the {r.pick(['church crypt', 'old granary', 'tithe barn'])}.",
                f"Boats could not reach the town for weeks, and the market was held in the "
                f"churchyard instead of the square.",
                f"The river rose and fell so often that the ferryman kept a mark on his "
                f"door for every change."]),
        r.pick([f"That was also the year of {r.pick(EVENTS)}, which gave people something "
                f"else to talk about.",
                f"In the middle of it all came {r.pick(EVENTS)}, and for a few days the "
                f"weather was forgotten.",
                f"The parish clerk wrote that he had never seen the {t['animal']} so restless."]),
        r.pick(["By the end of the season, most of the damage had been repaired, and the "
                "town had a new story to tell.",
                "Afterwards, the council ordered new ditches to be dug, though the work "
                "took another ten years to finish.",
                "Old people said it was a warning, young people said it was only weather, "
                "and both went on with their work.",
                "A song was written about it, and it is still sung, a little out of tune, "
                "at the winter fair."]),
    ]
    return " ".join(s)


def market(r, w, t):
    a, b = w.person(), w.person()
    s = [
        r.pick([f"On market day in {t['name']}, the stalls open at first light.",
                f"The market of {t['name']} is held every {r.pick(['Tuesday', 'Thursday', 'Saturday'])}, "
                f"and has been for as long as anyone can remember.",
                f"Market day begins with the ringing of the bell near {t['landmark']}."]),
        f"Farmers bring {r.pick(GOODS)} from the hills, while the river boats unload "
        f"{r.pick(GOODS)} and {r.pick(GOODS)}.",
        r.pick([f"{a['name']}, {an(a['trade'])}, usually takes the place nearest the well, "
                f"and {b['name']} the {b['trade']} sets up opposite, which has led to more "
                f"than one argument.",
                f"The loudest voice belongs to {a['name']}, who sells {r.pick(GOODS)} and "
                f"tells every customer the same three jokes.",
                f"A {a['trade']} named {a['name']} is said to give the fairest weight in "
                f"the valley, and people queue for that reason alone."]),
        r.pick(["Prices are agreed with a handshake, and a broken bargain is remembered for years.",
                "Children run between the stalls collecting errands and small coins.",
                f"By noon the smell of {t['food']} fills the square, and trading slows down "
                f"while everyone eats.",
                "In the afternoon the fiddlers arrive, and the last sales are made to music.",
                "When the bell rings again at dusk, the stalls close and the talk moves to "
                "the inn.",
                f"Many a marriage in {t['name']} began with a conversation over a basket of "
                f"{r.pick(GOODS)}.",
                "Strangers are charged a little more, but they are also told the best gossip."]),
    ]
    return " ".join(s)


def legend(r, w, t):
    thing = r.pick(OBJECTS)
    place = r.pick(PLACES)
    s = [
        r.pick([f"There is an old story in {t['name']} about {thing} found at {place}.",
                f"Children in {t['name']} still hear the legend of {place} and what was "
                f"hidden there.",
                f"Like most towns in the valley, {t['name']} has its own legend, and this "
                f"one concerns {place}."]),
        r.pick([f"It is said that a traveller left {thing} there one stormy night, promising "
                f"to return when the river ran clear.",
                f"According to the tale, whoever finds {thing} will never lose their way in "
                f"fog.",
                f"The story goes that the {t['animal']} guard the place, and that they once "
                f"led a lost child home."]),
        r.pick(["Nobody has ever proved the story true, but nobody has quite dared to say "
                "it is false.",
                "The parish priest disapproved of the tale, which only made it more popular.",
                "Each teller adds a detail, so no two versions are ever quite the same.",
                "Sensible people laugh at it by day and avoid the place after dark.",
                f"A schoolteacher once tried to trace the story to its source and found a "
                f"version of it in {r.pick(w.towns)['name']} as well.",
                f"Once a year, on the shortest day, someone leaves {r.pick(FOODS)} at "
                f"{place}, and nobody admits to doing it.",
                "The tale is told differently by fishermen and by farmers, and each side "
                "thinks the other has it wrong."]),
    ]
    return " ".join(s)


def traveller(r, w, t):
    other = r.pick(w.towns)
    s = [
        r.pick([f"I reached {t['name']} late in the afternoon, after a long walk from "
                f"{other['name']}.",
                f"My second visit to {t['name']} came in {r.pick(SEASONS)}, and the town "
                f"seemed quite different from what I remembered.",
                f"I had been warned that {t['name']} was unfriendly to strangers, but I "
                f"found the opposite."]),
        r.pick([f"The innkeeper gave me a room overlooking {t['landmark'].split(' of ')[0]}, "
                f"and a supper of {t['food']}.",
                f"A {r.pick(TRADES)} I met on the road offered to show me the town, and "
                f"talked without stopping for an hour.",
                f"I spent the evening listening to an argument about whether {t['name']} "
                f"or {other['name']} makes the better {r.pick(GOODS)}."]),
        r.pick(["I wrote these notes by candlelight, and I fear some of the names are "
                "spelled wrongly.",
                "The people here speak slowly and choose their words with care.",
                f"I have rarely eaten better {t['food']}, and I said so, which made me a "
                f"friend for life.",
                f"The {t['animal']} woke me at dawn, and I could not be angry with them.",
                f"Before I left, an old {r.pick(TRADES)} made me promise to describe the "
                f"town fairly, which I hope I have done.",
                "Everyone I asked gave me directions, and no two sets of directions agreed.",
                f"I left the next morning with a gift of {r.pick(GOODS)} and a promise to "
                f"return."]),
    ]
    return " ".join(s)


def letter(r, w, t):
    a, b = w.person(), w.person()
    s = [
        f"A letter kept in the town chest of {t['name']}, written by {a['name']} to "
        f"{b['name']}, gives a sense of daily life.",
        r.pick([f"\"The {t['animal']} have returned to the river,\" it begins, \"and the "
                f"{r.pick(GOODS)} sold well this week, though not as well as I hoped.\"",
                f"\"I write in haste,\" the letter says, \"because the boat leaves at dawn "
                f"and the {r.pick(TRADES)} has promised to carry this for me.\"",
                f"\"You will laugh,\" it says, \"but I have finally repaired "
                f"{r.pick(OBJECTS)}, and it works better than it ever did.\"",
                f"\"The whole town is talking about {r.pick(EVENTS)},\" it reads, \"and I "
                f"am tired of hearing about it already.\"",
                f"\"Do not believe what they say about the {r.pick(TRADES)},\" it warns, "
                f"\"for I was there and saw everything.\"",
                f"\"The {r.pick(SEASONS)} has been kind to us,\" it says, \"and the "
                f"{t['food']} this year is the best I remember.\""]),
        r.pick(["The rest of the letter concerns a debt, a recipe and the health of an aunt.",
                "It ends with a request for news and a small drawing of the market square.",
                "Someone has added a note in the margin, in a different hand, which nobody "
                "has managed to read.",
                "It was never answered, as far as anyone knows, but it was carefully kept.",
                f"A postscript asks for {r.pick(GOODS)} to be sent before the roads close.",
                f"The last line mentions {r.pick(EVENTS)} and promises a longer letter soon.",
                "The paper is stained with what looks like candle wax, and the ink has faded "
                "to brown."]),
    ]
    return " ".join(s)


PARAGRAPHS = [town_intro, portrait, season, market, legend, traveller, letter]


def chapter(r, w, number, t):
    title = f"Chapter {number}. {t['name']}"
    kinds = [town_intro] + [r.pick(PARAGRAPHS[1:]) for _ in range(4 + r.below(4))]
    return title + "\n\n" + "\n\n".join(kind(r, w, t) for kind in kinds)


def write_text(path, seed, target_chars, needle, needle_depth):
    r = Rng(seed)
    w = World(r)
    parts = ["The Chronicle of the River Towns\n\nWhat follows is a collection of notes, "
             "stories, letters and records about the towns of one river valley, gathered "
             "over many years by travellers and parish clerks. It is arranged by town, "
             "and each chapter mixes history, daily life and local legend."]
    length, number, placed = len(parts[0]), 0, False
    while length < target_chars:
        number += 1
        text = chapter(r, w, number, w.towns[(number - 1) % len(w.towns)])
        if not placed and length + len(text) >= needle_depth * target_chars:
            # The needle goes at the end of this chapter, as one more ordinary paragraph.
            text += "\n\n" + needle
            placed = True
        parts.append(text)
        length += len(text) + 2
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(parts) + "\n")


TEXTS = [
    ("chronicle_4k.txt", 4, 18000,
     "One detail about the clock in the market hall is worth setting down exactly: its "
     "pendulum was weighted with a lump of green glass brought from the coast by a ferryman "
     "named Wilhelmina Starling, who refused any payment for it."),
    ("chronicle_32k.txt", 32, 148000,
     "The parish clerk recorded one unusual fact with great care: the great bell of the "
     "round tower was cast from four hundred melted silver spoons, donated by a clockmaker "
     "named Augustin Pell after his daughter recovered from a fever."),
    ("chronicle_100k.txt", 100, 462000,
     "Hidden among the records is a note that the annual boat race between the two river "
     "guilds was once won by a beekeeper named Marigold Fenn, who rowed alone in a borrowed "
     "washtub and crossed the line while the other boats were still arguing at the start."),
]

if __name__ == "__main__":
    for name, seed, chars, needle in TEXTS:
        write_text(os.path.join(HERE, name), seed, chars, needle, 0.6)
        print(name, os.path.getsize(os.path.join(HERE, name)), "bytes")
