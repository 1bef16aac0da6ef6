"""Every word on the screen in Chinese (default) and English.

`t(key, lang)` gives a screen text; `label(group, code, lang)` names a code of
the event contract (category, status, source, indicator, level ...) and falls
back to the code itself for codes we do not know, as EVENTS.md asks.
`tests/test_screen_i18n.py` checks that every entry has both languages.
"""

from __future__ import annotations

LANGS = ("zh-CN", "en")

TEXT: dict[str, tuple[str, str]] = {
    "title": ("城市运行驾驶舱", "City Operations Cockpit"),
    "city": ("全市", "City"),
    "kpi_today": ("今日上报", "Reported today"),
    "kpi_open": ("在办", "Open"),
    "kpi_overdue": ("超期", "Overdue"),
    "kpi_closed": ("今日结案", "Closed today"),
    "kpi_rate": ("结案率", "Closure rate"),
    "kpi_mttc": ("平均处置", "Mean time to close"),
    "kpi_traffic": ("拥堵指数", "Congestion index"),
    "kpi_levels": ("预警区域", "Areas on warning"),
    "minutes": ("分钟", "min"),
    "feed": ("实时事件", "Live events"),
    "top_risk": ("风险最高的小区", "Highest-risk compounds"),
    "trend": ("24小时事件趋势", "Incidents per hour, last 24 h"),
    "detail_risk": ("风险评分", "Risk score"),
    "detail_factors": ("风险因素", "What drives it"),
    "detail_categories": ("风险分类", "By category"),
    "order_trigger": ("触发依据", "What triggered it"),
    "detail_open": ("在办事件", "Open incidents"),
    "no_score": ("暂无评分", "Not scored"),
    "none": ("暂无", "None"),
    "layers": ("图层", "Layers"),
    "pick_area": ("选择区域", "Choose an area"),
    "as_of": ("数据截至", "Data as of"),
    "last_event": ("最后事件", "Last event"),
    "stale": ("数据已停止更新", "DATA IS STALE"),
    "stale_since": ("显示的是最后已知状态", "showing the last known state"),
    "stale_redis": ("无法连接数据库", "database unreachable"),
    "stale_quiet": ("秒内无新事件", "s without a new event"),
    "push_live": ("● 推送", "● push"),
    "push_polling": ("◌ 轮询", "◌ polling"),
    "push_retry": ("◌ 重连", "◌ reconnecting"),
    "push_live_title": ("更新由推送实时送达", "updates arrive by push as they happen"),
    "push_polling_title": ("推送不可用：每秒轮询更新", "push unavailable: polling every tick"),
    "push_retry_title": ("推送连接中断：重连期间轮询更新", "push lost: polling while reconnecting"),
    "lang_switch": ("English", "中文"),
    "incident": ("事件", "Incident"),
    "traffic": ("交通", "Traffic"),
    "risk": ("风险", "Risk"),
    "score": ("评分", "Score"),
    "status": ("状态", "Status"),
    "source": ("来源", "Source"),
    "age": ("时长", "Age"),
    "severity": ("等级", "Severity"),
    "overdue": ("超期", "Overdue"),
    "speed": ("车速", "Speed"),
    "index": ("指数", "Index"),
    "segments": ("路段", "Segments"),
    "breadcrumb": ("位置", "Location"),
    "signed_in": ("当前用户", "Signed in"),
    "sign_out": ("退出", "Sign out"),
    "open_demo": ("开放演示模式", "Open demo mode"),
    "audit": ("审计日志", "Audit log"),
    "audit_from": ("起 2026-12-01", "From 2026-12-01"),
    "audit_to": ("止 2026-12-31", "To 2026-12-31"),
    "audit_area": ("区域编码", "Area code"),
    "audit_newest": ("最新", "Newest"),
    "audit_older": ("更早 →", "Older →"),
    "close": ("关闭", "Close"),
    "overdue_list": ("超期事件", "Overdue incidents"),
    "escalated_here": ("已升级至本级", "Escalated here"),
    "escalated_to": ("升级至", "Escalated to"),
    "late": ("超时", "Late"),
    "live": ("实时", "Live"),
    "replay": ("回看", "Replay"),
    "pause": ("暂停", "Pause"),
    "now": ("现在", "Now"),
    "category": ("类别", "Category"),
    "department": ("处置部门", "Department"),
    "reported": ("上报时间", "Reported"),
    "history": ("处置记录", "Action history"),
    "reports": ("合并上报 ({n} 条, {m} 个来源)", "Merged reports ({n}, {m} sources)"),
    "triggered": ("触发的上报 ({n} 条)", "Reports that opened it ({n})"),
    "proactive_title": ("未诉先办 · {what} · {n} 条上报", "Proactive · {what} · {n} reports"),
    "split_off": ("拆分", "Split off"),
    "merged": ("已并案", "Merged"),
    "split_case": ("拆分为单独案件", "Split into a case of its own"),
    "note_ph": ("填写备注", "Write a note"),
    "result_ph": ("办结结果", "Result of the work"),
    "dept_ph": ("选择部门", "Choose a department"),
    "sent": ("已提交", "Sent"),
    "refused": ("未能提交", "Refused"),
    "read_only": ("只读账号，不能处置", "Read-only account: no actions"),
    "replay_panel": ("回看：此为 {time} 时的状态；处置请回到实时",
                     "Look-back: as it was at {time}; go live to act"),
    "replay_busy": ("回看准备中，稍后自动刷新", "Look-back is being prepared; this refreshes by "
                    "itself"),
    "not_yet": ("此时尚无此事件的记录", "Not known to the cockpit at this moment"),
    "out_of_scope": ("该区域不在您的权限范围内，正在返回您的辖区",
                     "This area is outside your scope: back to your own"),
    "export_csv": ("导出在办事件 (CSV)", "Export the open incidents (CSV)"),
    "go_live": ("回看中不能处置，请回到实时", "Looking back: go live to act"),
    "current_state": ("当前状态", "Current state"),
    "yes": ("是", "Yes"),
    "no": ("否", "No"),
    "when": ("时间", "Time"),
    "who": ("用户", "User"),
    "address": ("地址", "Address"),
    "target": ("对象", "Target"),
    "what_done": ("操作", "Action"),
    "detail": ("详情", "Detail"),
    "reason_ph": ("退回原因", "Why it is rejected"),
    "reopen_count": ("返工次数", "Reopened"),
    "satisfaction": ("回访评价", "Resident's answer"),
    "sat_ph": ("回访结果", "Resident's answer"),
    "rankings": ("考核排名", "Rankings"),
    "export_rankings": ("导出排名 (CSV)", "Export the ranking (CSV)"),
    "rank_level": ("排名对象", "Rank"),
    "rank_period": ("期间", "Period"),
    "rank": ("名次", "Rank"),
    "rank_name": ("名称", "Name"),
    "received": ("受理数", "Received"),
    "response_rate": ("响应率", "Response"),
    "closure_rate": ("结案率", "Closure"),
    "on_time_rate": ("按期结案率", "On time"),
    "rework_rate": ("返工率", "Rework"),
    "satisfaction_rate": ("满意率", "Satisfaction"),
    "composite": ("综合得分", "Score"),
    "period_today": ("今日", "Today"),
    "period_7d": ("近7天", "Last 7 days"),
    "period_30d": ("近30天", "Last 30 days"),
    "by_street": ("街道", "Streets"),
    "by_department": ("部门", "Departments"),
    "kpi_sensor_alarms": ("感知告警", "Sensor alarms"),
    "sensors": ("物联感知", "Sensors"),
    "sensor_alarm": ("告警", "Alarm"),
    "sensor_normal": ("正常", "Normal"),
    "tour": ("巡屏", "Tour"),
    "tour_paused": ("已暂停", "paused"),
    "alert_incident": ("特别严重事件", "Critical incident"),
    "alert_risk": ("风险预警升级", "Risk warning raised"),
    "alert_sensor": ("物联感知告警", "Sensor alarm"),
    "alert_device": ("设备", "Device"),
    "alert_threshold": ("告警阈值", "Alarm threshold"),
    "alert_ack": ("确认告警", "Acknowledge"),
    "alert_where": ("地点", "Where"),
    "alert_when": ("时间", "When"),
    "alert_why": ("依据", "Why"),
    # the map at city scale (layers/incidents.py, layers/traffic.py)
    "map_counted": ("事件数", "Incident counts"),
    "map_cell": ("网格范围内", "In this cell"),
    "synthetic_roads": ("演示用合成路网，非真实道路", "synthetic demo road, not a real one"),
}

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "category": {
        "road_occupation": ("占道经营", "Road occupation"),
        "illegal_construction": ("乱搭乱建", "Illegal construction"),
        "street_drying": ("沿街晾晒", "Street drying"),
        "out_of_store": ("出店经营", "Out-of-store trading"),
        "manhole": ("井盖", "Manhole"),
        "garbage": ("垃圾", "Garbage"),
        "noise": ("噪音", "Noise"),
        "traffic_accident": ("交通事故", "Traffic accident"),
        "fire_hazard": ("消防隐患", "Fire hazard"),
        "risk_order": ("风险工单", "Risk work order"),
        "other": ("其他", "Other"),
        "unknown": ("未知类别", "Unknown category"),
    },
    "status": {
        "reported": ("已上报", "Reported"),
        "dispatched": ("已派遣", "Dispatched"),
        "in_progress": ("处置中", "In progress"),
        "resolved": ("已处置", "Resolved"),
        "verified": ("已核查", "Verified"),
        "closed": ("已结案", "Closed"),
        "reopened": ("重新打开", "Reopened"),
    },
    "source": {
        "hotline": ("12345热线", "12345 hotline"),
        "grid": ("网格员", "Grid inspector"),
        "video_ai": ("视频AI", "Video AI"),
        "sensor": ("传感器", "Sensor"),
        "proactive": ("未诉先办", "Proactive"),
        "other": ("其他", "Other"),
        "": ("未注明", "Not given"),
    },
    "indicator": {
        "fire_hazards": ("消防隐患", "Fire hazards"),
        "fever_reports": ("发热报告", "Fever reports"),
        "repeat_complaints": ("重复投诉", "Repeat complaints"),
        "flood_points": ("积水点", "Flood points"),
        "elderly_living_alone": ("独居老人", "Elderly living alone"),
    },
    "risk_category": {
        "risk": ("综合风险", "Overall risk"),
        "other": ("其他", "Other"),
    },
    "risk_level": {
        "normal": ("正常", "Normal"),
        "blue": ("蓝色预警", "Blue (IV)"),
        "yellow": ("黄色预警", "Yellow (III)"),
        "orange": ("橙色预警", "Orange (II)"),
        "red": ("红色预警", "Red (I)"),
    },
    "traffic_level": {
        "smooth": ("畅通", "Smooth"),
        "slow": ("缓行", "Slow"),
        "congested": ("拥堵", "Congested"),
        "severe": ("严重拥堵", "Severe"),
        "none": ("无数据", "No data"),
    },
    "severity": {
        "1": ("一般", "Minor"),
        "2": ("较重", "Moderate"),
        "3": ("严重", "Serious"),
        "4": ("特别严重", "Critical"),
    },
    "kind": {
        "incident": ("事件", "Incident"),
        "traffic": ("交通", "Traffic"),
        "risk": ("风险", "Risk"),
        "sensor": ("物联感知", "Sensor"),
    },
    "device_type": {
        "water_level": ("积水水位", "Water level"),
        "smoke": ("烟感", "Smoke alarm"),
        "manhole_tilt": ("井盖倾斜", "Manhole tilt"),
        "pm25": ("PM2.5", "PM2.5"),
    },
    "role": {
        "city": ("市级", "City operator"),
        "district": ("区级", "District official"),
        "street": ("街道", "Street official"),
        "wall": ("大屏", "Wall screen"),
    },
    "action": {
        "acknowledge": ("受理", "Acknowledge"),
        "dispatch": ("派单", "Dispatch"),
        "note": ("备注", "Note"),
        "close": ("办结", "Close"),
        "verify": ("核查通过", "Verify"),
        "reject": ("退回", "Reject"),
        "follow_up": ("回访", "Follow up"),
        "split": ("拆分", "Split"),
    },
    "satisfaction": {
        "satisfied": ("满意", "Satisfied"),
        "basically_satisfied": ("基本满意", "Basically satisfied"),
        "dissatisfied": ("不满意", "Dissatisfied"),
    },
    "level": {
        "city": ("市", "City"),
        "district": ("区", "District"),
        "street": ("街道", "Street"),
        "community": ("社区", "Community"),
        "compound": ("小区", "Compound"),
        "grid": ("网格", "Grid cell"),
    },
}


# Large numbers in a KPI tile: the language's own steps (万 and 亿 in Chinese).
NUMBER_UNITS: dict[str, tuple[tuple[int, str], ...]] = {
    "zh-CN": ((10**8, "亿"), (10**4, "万")),
    "en": ((10**9, "B"), (10**6, "M"), (10**3, "k")),
}


def pick_lang(value: str | None, default: str = "zh-CN") -> str:
    """`en` or `zh-CN` from a `?lang=` value; anything else gives the default."""
    if value and value.lower().startswith("en"):
        return "en"
    if value and value.lower().startswith("zh"):
        return "zh-CN"
    return default


def t(key: str, lang: str) -> str:
    """A screen text in the language."""
    zh, en = TEXT[key]
    return en if lang == "en" else zh


def label(group: str, code: str | None, lang: str) -> str:
    """The name of a contract code; an unknown code is shown as itself."""
    pair = LABELS[group].get("" if code is None else str(code))
    if pair is None:
        return str(code)
    return pair[1] if lang == "en" else pair[0]
