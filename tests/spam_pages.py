"""Spam pages for the content-safety tests and benchmark: real page text from ../shared/data with
adult or gambling spam paragraphs inserted, as hacked sites and link farms carry them.

The spam is generated here from sentence patterns written for cleanmix (not copied from any
corpus), in English and Chinese, and disguised the ways spam dodges keyword filters: letters
spaced or dotted (s.e.x), digits for letters (p0rn), full-width letters, spaces between Han
characters (博 彩), zero-width characters. The lists and the main patterns were written by the same
hand, so recall measured on them is an upper bound for spam worded otherwise; `HELD_OUT` and
`FRESH` sentences were written without looking at the lists, to measure that.
"""

from __future__ import annotations

import random

import polars as pl

EN = {
    "adult": [
        "Watch {adj} porn videos free at {site}, updated every day.",
        "Hot singles in {city} want to meet you tonight, sign up free at {site}.",
        "{n} free porn tubes: {adj} milf, amateur and teen xxx movies in HD.",
        "Live sex cams with {adj} camgirls, no credit card needed.",
        "Click here for xxx videos and nude pics of {adj} girls.",
        "Best hardcore porn sites of {year}, ranked: blowjob, creampie and gangbang clips.",
        "Adult dating for {city}: horny milfs near you are waiting for a sex chat.",
        "Download {n} hentai porn episodes uncensored at {site}.",
    ],
    "gambling": [
        "Best online casino {year}: claim your {n} free spins and a {pct}% welcome bonus.",
        "Play real money slots, blackjack and roulette at {site} with instant withdrawals.",
        "No deposit bonus codes for {city} players: bet online and hit the jackpot.",
        "Sports betting odds, live casino and poker online at {site}.",
        "Top {n} online casinos with the fastest payouts, reviewed by {site}.",
        "Bitcoin casino {site}: {pct}% cashback on baccarat and online slots.",
        "Play slots for real money, {n} free spins with no deposit bonus today.",
    ],
}
ZH = {
    "adult": [
        "{site}提供最新{adj}成人视频，{cta}。",
        "同城约炮，美女一夜情交友，加QQ{qq}。",
        "免费在线观看国产av、日本av女优，每日更新{n}部。",
        "高端外围女上门按摩，学生妹兼职，包夜{n}元，{cta}。",
        "激情裸聊直播间，{adj}美女主播在线视频裸聊，{cta}。",
        "{site}色情网站导航，{adj}色情电影、成人小说、偷拍视频一网打尽。",
        "寂寞了吗？{city}楼凤信息大全，找小姐就上{site}。",
    ],
    "gambling": [
        "{site}网上赌场，真人荷官在线发牌，百家乐、老虎机、时时彩应有尽有。",
        "新用户注册送彩金{n}元，首存送{pct}%，提款秒到账，{cta}。",
        "澳门葡京娱乐官方网站，体育投注、足球投注、六合彩一站式服务。",
        "北京赛车pk10计划，稳赚不赔，{cta}。",
        "{city}最大的线上娱乐城{site}，百家乐游戏，美女荷官二十四小时在线。",
        "皇冠体育开户，外围赌球，高赔率，{cta}。",
        "在线赌场排行榜：{site}、金沙娱乐、太阳城娱乐，存款优惠{pct}%。",
    ],
}
HELD_OUT = {
    # Written after the lists, without looking at them: the first measurement of spam worded
    # otherwise (en adult 16.6%, en gambling 4.4%, zh adult 0%, zh gambling 71.7% removed); the
    # lists were then extended with the kinds of wording these use, so they are no longer held out.
    ("en", "adult"): [
        "Meet lonely housewives near you who want casual encounters tonight.",
        "Dubai escort girls available 24/7, incall and outcall, call now.",
        "Watch the leaked celebrity sex tape uncensored.",
        "Naughty webcam models strip live for tips, join free.",
        "Busty amateur girls send nudes, chat privately.",
        "Best NSFW onlyfans leaks and nude photos updated hourly.",
    ],
    ("en", "gambling"): [
        "Get a 200% match on your first deposit and 50 bonus spins.",
        "Wager on football, basketball and esports with the best odds.",
        "Crypto slots with provably fair games and instant payouts.",
        "Spin the reels of Book of Dead and win up to 5000x.",
        "Our VIP club rewards high rollers with weekly cashback.",
        "Download the app and claim your sign-up bonus at our sportsbook.",
    ],
    ("zh", "adult"): [
        "寂寞少妇在线等你，视频聊天一对一。", "高清无码资源每日更新，点击领取会员。", "附近美女上门服务，全套服务，价格优惠。",
        "性感主播深夜福利直播，尺度大开。", "同城交友约会，快速找到今晚的伴。", "私密写真视频合集，打包下载。",
    ],
    ("zh", "gambling"): [
        "彩票计划群，专业导师带你每天稳赚。", "棋牌游戏平台，充值即送，提现秒到。", "足球比分竞猜，高额返利等你来拿。",
        "百家乐技巧分享，必胜打法包教包会。", "线上电子游戏，爆大奖，彩金池持续累积。", "加入代理，日赚千元，上不封顶。",
    ],
}
FRESH = {
    # Written after that extension, again without looking at the lists: the held-out measurement.
    ("en", "adult"): [
        "Hot local girls are online now and looking for a hookup, no strings attached.",
        "Exclusive amateur videos of real couples, full length, members area unlocked.",
        "Our models perform private shows on camera, tokens half price this week.",
        "Massage parlour with happy ending, open late, discreet parking.",
        "See her naked pics before they get deleted, click the link in bio.",
        "Top rated adult sites ranked by our editors, updated weekly.",
    ],
    ("en", "gambling"): [
        "Join the number one online betting platform and double your first top-up.",
        "Free chips every day, play roulette and baccarat from your phone.",
        "Live dealer tables open 24 hours, minimum bet one dollar.",
        "Claim 100 free spins on Starburst, no wagering, instant withdrawal.",
        "Bet on the Premier League with enhanced odds and early payout.",
        "Slot tournaments with a million dollar prize pool every weekend.",
    ],
    ("zh", "adult"): [
        "约吗？本地单身美女在线，加微信看照片。", "成人直播平台，主播大秀，充值看全场。", "高端会所，佳丽如云，包房服务，欢迎预约。",
        "宅男福利，精品套图，无删减在线看。", "夜场小姐陪玩，一条龙服务，电话预约。", "激情视频聊天室，美女在线一对一陪聊。",
    ],
    ("zh", "gambling"): [
        "正规网投平台，大额无忧，出款稳定。", "时时彩前后三计划，准确率百分之九十。", "真人百家乐，首充即送百分之五十。",
        "体育赛事投注，亚洲盘口，滚球实时。", "电子捕鱼游戏，一炮爆金，充值返现。", "推荐好友注册即送八十八元体验金。",
    ],
}
FILL_EN = {
    "adj": ["hot", "free", "sexy", "amateur", "HD", "hardcore"],
    "site": ["hotxtube.example", "vegaswin.example", "luckyspin24.example", "pornhubz.example", "casinoroyal.example"],
    "city": ["London", "Texas", "Sydney", "Toronto", "Manila"],
}
FILL_ZH = {
    "adj": ["高清", "免费", "无码", "精品", "火爆"],
    "site": ["www.8888bet.example", "金沙城", "葡京国际", "夜色直播", "www.av99.example"],
    "cta": ["点击进入", "加微信abc888", "立即观看", "扫码下载APP", "加QQ群12345678"],
    "city": ["上海", "深圳", "东莞", "澳门", "广州"],
}


def _fill(pattern: str, fill: dict[str, list[str]], rng: random.Random) -> str:
    values = {key: rng.choice(options) for key, options in fill.items()}
    values |= {"n": rng.randint(5, 500), "pct": rng.choice([50, 100, 150, 200]), "year": rng.randint(2015, 2024),
               "qq": rng.randint(10_000_000, 999_999_999)}
    return pattern.format(**values)


def disguise(sentence: str, rng: random.Random) -> str:
    """One of the ways spam hides words from filters, or none."""
    way = rng.randrange(6)
    if way == 0:  # spaces between Han characters, or between letters of each word
        return " ".join(sentence) if any("\u4e00" <= c <= "\u9fff" for c in sentence) else " ".join(
            ".".join(w) if w.isalpha() and len(w) <= 5 else w for w in sentence.split(" "))
    if way == 1:  # full-width Latin letters and digits
        return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in sentence)
    if way == 2:  # digits and signs for letters
        return sentence.replace("o", "0").replace("e", "3").replace("s", "$")
    if way == 3:  # zero-width characters inside words
        return "\u200b".join(sentence)
    return sentence


def spam_paragraph(language: str, kind: str, rng: random.Random, sentences: str = "patterns") -> str:
    patterns, fill = (EN, FILL_EN) if language == "en" else (ZH, FILL_ZH)
    choices = {"patterns": patterns[kind], "held_out": HELD_OUT[language, kind], "fresh": FRESH[language, kind]}[sentences]
    chosen = [disguise(_fill(rng.choice(choices), fill, rng), rng) for _ in range(rng.randint(3, 6))]
    return (" " if language == "en" else "").join(chosen)


def plant(text: str, paragraph: str, rng: random.Random) -> str:
    """`paragraph` between two lines of the page, at a random place (a link farm injected into a page)."""
    lines = text.split("\n")
    at = rng.randint(0, len(lines))
    return "\n".join([*lines[:at], paragraph, *lines[at:]])


def zh_pages(peoples_daily: pl.DataFrame, count: int, rng: random.Random) -> list[str]:
    """Chinese page texts: runs of 3-8 consecutive People's Daily paragraphs, as an article page holds them."""
    texts = peoples_daily.get_column("text").to_list()
    pages = []
    for _ in range(count):
        start = rng.randrange(len(texts) - 8)
        pages.append("\n".join(texts[start:start + rng.randint(3, 8)]))
    return pages


def spam_pages(data: pl.DataFrame, language: str, kind: str, seed: int = 0, sentences: str = "patterns") -> pl.DataFrame:
    """`data` (id, text: real pages) with one or two spam paragraphs of `kind` planted in each, from
    the `patterns`, the first `held_out` sentences or the `fresh` ones (see above)."""
    rng = random.Random(f"{seed}:{language}:{kind}")
    texts = []
    for text in data.get_column("text").to_list():
        for _ in range(rng.randint(1, 2)):
            text = plant(text, spam_paragraph(language, kind, rng, sentences), rng)
        texts.append(text)
    return pl.DataFrame({"id": [f"spam-{language}-{kind}-{i}" for i in range(len(texts))], "text": texts})
