"""A generated history of citizen messages over the demo city, for tests and benchmarks.

Each message is written the way people write to a hotline: a place, a colloquial description
(several paraphrases per problem class, most avoiding the class's own name), sometimes a time
and a complaint; a small share of labels is wrong, as in every real export. The department is
the one the demo city's responsibility rules name (the owning unit, else the district's office).

`paraphrase_pairs()` builds the labelled duplicate set: the same problem at the same corner on
the same day told in two different ways (a duplicate), and two different problems at the same
corner (not one)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

# class code -> ways citizens describe it (the class name itself is rarely used).
PHRASES: dict[str, tuple[str, ...]] = {
    "06042": (
        "垃圾桶满了没人清",
        "果皮箱溢出",
        "垃圾箱满溢",
        "垃圾站的桶都满出来了",
        "分类垃圾桶塞满了溢到地上",
        "垃圾箱爆满好几天没清运",
    ),
    "06010": (
        "路边有一堆垃圾",
        "暴露垃圾没人管",
        "草丛里扔了很多生活垃圾",
        "路口堆着垃圾袋散发臭味",
        "有人乱倒垃圾",
    ),
    "09006": (
        "有人在人行道上摆摊",
        "占道经营卖水果",
        "小贩推车占用人行道",
        "路边摆地摊影响通行",
        "流动摊贩占道卖菜",
    ),
    "09005": (
        "餐馆把桌椅摆到门外",
        "店外经营",
        "店铺把货物摆到店门口",
        "饭店在门口人行道上烧烤",
        "商户超出门窗经营",
    ),
    "07001": (
        "电线杆上贴了很多小广告",
        "墙上乱贴办证广告",
        "非法小广告",
        "到处是喷涂的电话号码",
        "单元门上贴满了开锁广告",
    ),
    "06036": ("楼道口乱堆杂物", "楼道里堆满了纸箱", "消防通道被杂物堵住", "有人在路边堆放建材杂物"),
    "01002": ("污水井盖破损", "下水道盖子坏了", "污水井盖缺失很危险", "窨井盖翘起来了车一过就响"),
    "01001": ("自来水井盖松动", "供水井盖破了", "水表井的盖子不见了"),
    "01037": ("路灯不亮", "晚上路灯坏了一片漆黑", "连续几盏路灯都不亮", "路灯白天一直亮着"),
    "21004": ("污水冒溢", "下水道往外冒污水", "污水从井里漫出来臭得很", "化粪池满了污水外溢"),
    "21001": ("下雨后路上积水很深", "道路积水过不去", "暴雨后路面淹了", "积水到膝盖车辆熄火"),
    "09010": ("共享单车乱停堵住盲道", "电动车乱停放", "非机动车乱停", "自行车把人行道堵死了"),
    "06028": ("晚上施工噪音太大", "夜间噪声扰民", "广场舞音响声音太吵", "酒吧音乐吵到半夜"),
    "08004": ("工地扬尘很大", "工地没有覆盖防尘网", "渣土车经过尘土飞扬", "施工现场灰尘漫天"),
    "06001": ("楼顶私搭乱建", "有人在屋顶加盖房子", "违章搭建铁皮房", "院子里私自搭棚子"),
    "22002": ("房屋一套改多套出租", "房东把房子隔成很多间出租", "群租房隔断太多有安全隐患"),
    "04002": ("行道树倒了", "树枝断了挂在半空", "行道树歪斜快要倒", "树木遮挡了红绿灯"),
    "02014": ("红绿灯坏了", "交通信号灯不亮", "信号灯一直闪黄灯", "路口红绿灯时间太短"),
    "03001": ("公共厕所太脏", "公厕没有水冲不了", "厕所门锁坏了", "公厕臭气熏天没人打扫"),
    "06020": ("有人在焚烧垃圾", "烧树叶浓烟很大", "空地上烧垃圾味道刺鼻"),
}
# Words that fit several classes: a real export is never cleanly separable.
SHARED: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("01001", "01002"), ("井盖坏了", "井盖松动有响声")),
    (("06010", "06042"), ("垃圾很多没人清理", "垃圾臭气熏天")),
    (("09005", "09006"), ("占道摆放影响行人", "人行道被占用")),
    (("21001", "21004"), ("路面有水排不出去",)),
    (("06028", "08004"), ("工地晚上还在施工",)),
)
# Neighbouring problems: the hard negatives of the duplicate set.
RELATED = {code: group for group, _ in SHARED for code in group}
# Streets that cross a district boundary (嘉禾路, 仙岳路 run through 思明 and 湖里): the text
# alone cannot say whose office a territorial problem goes to; the report's position can.
CROSSING = ("嘉禾路", "仙岳路", "环岛路")
# District code -> name, street examples (the demo city's districts).
DISTRICTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "350203": ("思明区", ("嘉禾路", "湖滨南路", "莲前西路", "厦禾路", "中山路")),
    "350206": ("湖里区", ("江头北路", "枋湖路", "五缘湾道", "金山路")),
    "350205": ("海沧区", ("海沧大道", "沧林路", "新阳路")),
    "350211": ("集美区", ("集美大道", "杏林路", "银江路")),
    "350212": ("同安区", ("环城南路", "银湖路", "西柯路")),
    "350213": ("翔安区", ("翔安南路", "新店路", "马巷路")),
}
PLACES = ("小区门口", "菜市场旁边", "公交站", "学校附近", "路口", "人行道上", "超市后面", "公园边")
OPENINGS = ("", "", "您好，", "我要反映一下，", "市民来电反映：", "投诉：")
TAILS = (
    "",
    "",
    "希望尽快处理",
    "已经好几天了",
    "影响居民出行",
    "请相关部门管一管",
    "多次反映没人管",
    "存在安全隐患",
)
TIMES = ("", "", "今天早上", "昨天晚上", "最近一周", "每天傍晚")


@dataclass(frozen=True)
class Message:
    text: str
    class_code: str
    department: str  # department code
    district: str
    created_at: datetime
    spot: str  # the corner: district + street + place


def owner(class_code: str, district: str) -> str:
    from cityloop.demo.build import CLASS_RULES

    for length in range(len(class_code), 0, -1):
        if class_code[:length] in CLASS_RULES:
            return CLASS_RULES[class_code[:length]]
    return f"D-{district}"


def compose(
    rng: random.Random, class_code: str, district: str, spot: str, *, specific: bool = False
) -> str:
    """One citizen's message; `specific` leaves out the words several classes share."""
    name, _streets = DISTRICTS[district]
    phrases = list(PHRASES[class_code])
    for group, shared in SHARED:
        if class_code in group and not specific:
            phrases += shared
    phrase = rng.choice(phrases)
    where = spot if rng.random() < 0.5 else spot.replace(name, "")
    parts = [rng.choice(OPENINGS), rng.choice(TIMES), where, phrase]
    tail = rng.choice(TAILS)
    return "".join(parts) + (f"，{tail}" if tail else "") + "。"


def _spot(rng: random.Random, district: str) -> str:
    name, streets = DISTRICTS[district]
    street = (
        rng.choice(CROSSING)
        if district in ("350203", "350206") and rng.random() < 0.4
        else rng.choice(streets)
    )
    return f"{name}{street}{rng.randint(1, 300)}号{rng.choice(PLACES)}"


def history(
    count: int, *, seed: int = 7, start: datetime, days: int = 365, noise: float = 0.03
) -> list[Message]:
    rng = random.Random(seed)
    codes = list(PHRASES)
    weights = [1.0 + (i % 5) for i in range(len(codes))]  # some classes are far commoner
    districts = list(DISTRICTS)
    out = []
    for _ in range(count):
        code = rng.choices(codes, weights)[0]
        district = rng.choice(districts)
        spot = _spot(rng, district)
        text = compose(rng, code, district, spot)
        label = rng.choice(codes) if rng.random() < noise else code
        at = start + timedelta(days=rng.uniform(0, days))
        out.append(Message(text, label, owner(label, district), district, at, spot))
    return out


def paraphrase_pairs(count: int, *, seed: int = 11) -> list[tuple[str, str, bool]]:
    """(first report, second report, same problem?) at one corner: half duplicates, half not.

    Two different problems are each told in words of their own class only (half of them a
    neighbouring class: 暴露垃圾 beside 垃圾箱满溢); with the words both classes share
    ("垃圾很多没人清理") no one could label the pair, so the set does not contain it."""
    rng = random.Random(seed)
    codes = [c for c, phrases in PHRASES.items() if len(phrases) >= 2]
    out = []
    for index in range(count):
        district = rng.choice(list(DISTRICTS))
        spot = _spot(rng, district)
        code = rng.choice(codes)
        first = compose(rng, code, district, spot, specific=index % 2 == 1)
        if index % 2 == 0:
            second = compose(rng, code, district, spot)
            while second == first:
                second = compose(rng, code, district, spot)
            out.append((first, second, True))
        else:
            related = [c for c in RELATED.get(code, ()) if c != code]
            if related and rng.random() < 0.5:
                other = rng.choice(related)
            else:
                other = rng.choice([c for c in codes if c != code])
            out.append((first, compose(rng, other, district, spot, specific=True), False))
    return out
