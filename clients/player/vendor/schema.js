/** The protocol schema (`crates/protocol/schema/v2.json`). */
export const SCHEMA = {
    "protocol_version": 2,
    "roots": {
        "client": "ClientMessage",
        "server": "ServerMessage",
        "client_datagram": "ClientDatagram",
        "server_datagram": "ServerDatagram",
        "event": "GameEvent"
    },
    "types": {
        "Change": {
            "kind": "enum",
            "variants": [
                {
                    "index": 0,
                    "name": "Var",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "name",
                            "type": "string"
                        },
                        {
                            "name": "value",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 1,
                    "name": "Stat",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "stat",
                            "type": "string"
                        },
                        {
                            "name": "entity",
                            "type": "string"
                        },
                        {
                            "name": "axis",
                            "type": "string"
                        },
                        {
                            "name": "value",
                            "type": "i64"
                        }
                    ]
                },
                {
                    "index": 2,
                    "name": "Item",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "item",
                            "type": "string"
                        },
                        {
                            "name": "count",
                            "type": "u32"
                        }
                    ]
                },
                {
                    "index": 3,
                    "name": "Quest",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "quest",
                            "type": "string"
                        },
                        {
                            "name": "status",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 4,
                    "name": "Objective",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "quest",
                            "type": "string"
                        },
                        {
                            "name": "objective",
                            "type": "string"
                        },
                        {
                            "name": "progress",
                            "type": "u32"
                        },
                        {
                            "name": "target",
                            "type": "u32"
                        }
                    ]
                },
                {
                    "index": 5,
                    "name": "Xp",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "xp",
                            "type": "i64"
                        }
                    ]
                },
                {
                    "index": 6,
                    "name": "Level",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "level",
                            "type": "u32"
                        }
                    ]
                },
                {
                    "index": 7,
                    "name": "Unlocked",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "scene",
                            "type": "string"
                        }
                    ]
                }
            ]
        },
        "Choice": {
            "kind": "struct",
            "fields": [
                {
                    "name": "edge",
                    "type": "string"
                },
                {
                    "name": "label",
                    "type": {
                        "option": "string"
                    }
                },
                {
                    "name": "available_at_ms",
                    "type": "i64"
                }
            ]
        },
        "ClientDatagram": {
            "kind": "enum",
            "variants": [
                {
                    "index": 0,
                    "name": "TimeSyncRequest",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "client_send_us",
                            "type": "u64"
                        }
                    ]
                }
            ]
        },
        "ClientMessage": {
            "kind": "enum",
            "variants": [
                {
                    "index": 0,
                    "name": "Hello",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "protocol_version",
                            "type": "u16"
                        },
                        {
                            "name": "client",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 1,
                    "name": "Ping",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "nonce",
                            "type": "u64"
                        },
                        {
                            "name": "client_time_us",
                            "type": "u64"
                        }
                    ]
                },
                {
                    "index": 2,
                    "name": "Authenticate",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "token",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 3,
                    "name": "CreateSession",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "scene",
                            "type": {
                                "option": "string"
                            }
                        },
                        {
                            "name": "world",
                            "type": {
                                "option": "string"
                            }
                        }
                    ]
                },
                {
                    "index": 4,
                    "name": "JoinSession",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "session_id",
                            "type": "uuid"
                        },
                        {
                            "name": "last_seq",
                            "type": {
                                "option": "u64"
                            }
                        }
                    ]
                },
                {
                    "index": 5,
                    "name": "Command",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "request_id",
                            "type": "u64"
                        },
                        {
                            "name": "command",
                            "type": "GameCommand"
                        }
                    ]
                },
                {
                    "index": 6,
                    "name": "Heartbeat",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "client_time_ms",
                            "type": "u64"
                        }
                    ]
                }
            ]
        },
        "GameCommand": {
            "kind": "enum",
            "variants": [
                {
                    "index": 0,
                    "name": "Choose",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "edge",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 1,
                    "name": "MiniGameInput",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "round",
                            "type": "u32"
                        },
                        {
                            "name": "nonce",
                            "type": "u64"
                        },
                        {
                            "name": "client_time_ms",
                            "type": "i64"
                        }
                    ]
                },
                {
                    "index": 2,
                    "name": "Leave",
                    "kind": "unit"
                },
                {
                    "index": 3,
                    "name": "Continue",
                    "kind": "unit"
                }
            ]
        },
        "GameEvent": {
            "kind": "enum",
            "variants": [
                {
                    "index": 0,
                    "name": "SessionStarted",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "scene",
                            "type": "string"
                        },
                        {
                            "name": "content_version",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 1,
                    "name": "Resumed",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "scene",
                            "type": "string"
                        },
                        {
                            "name": "node",
                            "type": "string"
                        },
                        {
                            "name": "notes",
                            "type": {
                                "seq": "string"
                            }
                        }
                    ]
                },
                {
                    "index": 2,
                    "name": "NodeEntered",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "scene",
                            "type": "string"
                        },
                        {
                            "name": "node",
                            "type": "string"
                        },
                        {
                            "name": "kind",
                            "type": "string"
                        },
                        {
                            "name": "media",
                            "type": {
                                "option": "Media"
                            }
                        },
                        {
                            "name": "media_pending",
                            "type": "bool"
                        },
                        {
                            "name": "lines",
                            "type": {
                                "seq": "Line"
                            }
                        },
                        {
                            "name": "prompt",
                            "type": {
                                "option": "string"
                            }
                        },
                        {
                            "name": "presentation",
                            "type": "Presentation"
                        }
                    ]
                },
                {
                    "index": 3,
                    "name": "ChoicesOffered",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "node",
                            "type": "string"
                        },
                        {
                            "name": "choices",
                            "type": {
                                "seq": "Choice"
                            }
                        }
                    ]
                },
                {
                    "index": 4,
                    "name": "StateDelta",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "changes",
                            "type": {
                                "seq": "Change"
                            }
                        }
                    ]
                },
                {
                    "index": 5,
                    "name": "MiniGamePrompt",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "game",
                            "type": "string"
                        },
                        {
                            "name": "round",
                            "type": "u32"
                        },
                        {
                            "name": "rounds",
                            "type": "u32"
                        },
                        {
                            "name": "nonce",
                            "type": "u64"
                        },
                        {
                            "name": "opens_at_ms",
                            "type": "i64"
                        },
                        {
                            "name": "closes_at_ms",
                            "type": "i64"
                        }
                    ]
                },
                {
                    "index": 6,
                    "name": "MiniGameRound",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "round",
                            "type": "u32"
                        },
                        {
                            "name": "hit",
                            "type": "bool"
                        },
                        {
                            "name": "reason",
                            "type": {
                                "option": "string"
                            }
                        }
                    ]
                },
                {
                    "index": 7,
                    "name": "MiniGameResult",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "game",
                            "type": "string"
                        },
                        {
                            "name": "success",
                            "type": "bool"
                        },
                        {
                            "name": "score",
                            "type": "i64"
                        },
                        {
                            "name": "detail",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 8,
                    "name": "QuestUpdated",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "quest",
                            "type": "string"
                        },
                        {
                            "name": "status",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 9,
                    "name": "ObjectiveUpdated",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "quest",
                            "type": "string"
                        },
                        {
                            "name": "objective",
                            "type": "string"
                        },
                        {
                            "name": "progress",
                            "type": "u32"
                        },
                        {
                            "name": "target",
                            "type": "u32"
                        },
                        {
                            "name": "completed",
                            "type": "bool"
                        }
                    ]
                },
                {
                    "index": 10,
                    "name": "LevelUp",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "level",
                            "type": "u32"
                        },
                        {
                            "name": "xp",
                            "type": "i64"
                        }
                    ]
                },
                {
                    "index": 11,
                    "name": "SceneUnlocked",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "scene",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 12,
                    "name": "SessionEnded",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "reason",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 13,
                    "name": "Error",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "command",
                            "type": "string"
                        },
                        {
                            "name": "code",
                            "type": "string"
                        },
                        {
                            "name": "message",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 14,
                    "name": "MediaReady",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "scene",
                            "type": "string"
                        },
                        {
                            "name": "node",
                            "type": "string"
                        },
                        {
                            "name": "media",
                            "type": "Media"
                        }
                    ]
                },
                {
                    "index": 15,
                    "name": "PlaybackStep",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "node",
                            "type": "string"
                        },
                        {
                            "name": "step",
                            "type": "u32"
                        }
                    ]
                },
                {
                    "index": 16,
                    "name": "MediaProgress",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "scene",
                            "type": "string"
                        },
                        {
                            "name": "node",
                            "type": "string"
                        },
                        {
                            "name": "progress",
                            "type": "u8"
                        },
                        {
                            "name": "queue_position",
                            "type": {
                                "option": "u32"
                            }
                        },
                        {
                            "name": "estimated_start_unix_ms",
                            "type": {
                                "option": "i64"
                            }
                        }
                    ]
                }
            ]
        },
        "Hotspot": {
            "kind": "struct",
            "fields": [
                {
                    "name": "id",
                    "type": "string"
                },
                {
                    "name": "edge",
                    "type": "string"
                },
                {
                    "name": "label",
                    "type": {
                        "option": "string"
                    }
                },
                {
                    "name": "x",
                    "type": "u16"
                },
                {
                    "name": "y",
                    "type": "u16"
                },
                {
                    "name": "w",
                    "type": "u16"
                },
                {
                    "name": "h",
                    "type": "u16"
                }
            ]
        },
        "ItemCount": {
            "kind": "struct",
            "fields": [
                {
                    "name": "item",
                    "type": "string"
                },
                {
                    "name": "count",
                    "type": "u32"
                }
            ]
        },
        "Line": {
            "kind": "struct",
            "fields": [
                {
                    "name": "id",
                    "type": "string"
                },
                {
                    "name": "speaker",
                    "type": "string"
                },
                {
                    "name": "text",
                    "type": "string"
                }
            ]
        },
        "Media": {
            "kind": "struct",
            "fields": [
                {
                    "name": "url",
                    "type": "string"
                },
                {
                    "name": "media_type",
                    "type": "string"
                }
            ]
        },
        "MiniGamePrompt": {
            "kind": "struct",
            "fields": [
                {
                    "name": "game",
                    "type": "string"
                },
                {
                    "name": "round",
                    "type": "u32"
                },
                {
                    "name": "rounds",
                    "type": "u32"
                },
                {
                    "name": "nonce",
                    "type": "u64"
                },
                {
                    "name": "opens_at_ms",
                    "type": "i64"
                },
                {
                    "name": "closes_at_ms",
                    "type": "i64"
                }
            ]
        },
        "ObjectiveView": {
            "kind": "struct",
            "fields": [
                {
                    "name": "objective",
                    "type": "string"
                },
                {
                    "name": "progress",
                    "type": "u32"
                },
                {
                    "name": "target",
                    "type": "u32"
                },
                {
                    "name": "completed",
                    "type": "bool"
                }
            ]
        },
        "Playback": {
            "kind": "enum",
            "variants": [
                {
                    "index": 0,
                    "name": "Normal",
                    "kind": "unit"
                },
                {
                    "index": 1,
                    "name": "Loop",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "start_ms",
                            "type": "u32"
                        },
                        {
                            "name": "end_ms",
                            "type": "u32"
                        }
                    ]
                },
                {
                    "index": 2,
                    "name": "Steps",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "steps",
                            "type": {
                                "seq": "PlaybackStep"
                            }
                        },
                        {
                            "name": "current",
                            "type": "u32"
                        }
                    ]
                }
            ]
        },
        "PlaybackStep": {
            "kind": "struct",
            "fields": [
                {
                    "name": "label",
                    "type": {
                        "option": "string"
                    }
                },
                {
                    "name": "start_ms",
                    "type": "u32"
                },
                {
                    "name": "end_ms",
                    "type": "u32"
                },
                {
                    "name": "minigame",
                    "type": {
                        "option": "string"
                    }
                }
            ]
        },
        "Position": {
            "kind": "struct",
            "fields": [
                {
                    "name": "scene",
                    "type": "string"
                },
                {
                    "name": "node",
                    "type": "string"
                },
                {
                    "name": "kind",
                    "type": "string"
                },
                {
                    "name": "media",
                    "type": {
                        "option": "Media"
                    }
                },
                {
                    "name": "media_pending",
                    "type": "bool"
                },
                {
                    "name": "lines",
                    "type": {
                        "seq": "Line"
                    }
                },
                {
                    "name": "prompt",
                    "type": {
                        "option": "string"
                    }
                }
            ]
        },
        "Presentation": {
            "kind": "struct",
            "fields": [
                {
                    "name": "playback",
                    "type": "Playback"
                },
                {
                    "name": "skippable",
                    "type": "bool"
                },
                {
                    "name": "loopable",
                    "type": "bool"
                },
                {
                    "name": "hotspots",
                    "type": {
                        "seq": "Hotspot"
                    }
                },
                {
                    "name": "group",
                    "type": {
                        "option": "string"
                    }
                }
            ]
        },
        "ProgressionView": {
            "kind": "struct",
            "fields": [
                {
                    "name": "stats",
                    "type": {
                        "seq": "StatValue"
                    }
                },
                {
                    "name": "items",
                    "type": {
                        "seq": "ItemCount"
                    }
                },
                {
                    "name": "quests",
                    "type": {
                        "seq": "QuestView"
                    }
                },
                {
                    "name": "vars",
                    "type": {
                        "seq": "VarValue"
                    }
                },
                {
                    "name": "xp",
                    "type": "i64"
                },
                {
                    "name": "level",
                    "type": "u32"
                },
                {
                    "name": "unlocked",
                    "type": {
                        "seq": "string"
                    }
                }
            ]
        },
        "QuestView": {
            "kind": "struct",
            "fields": [
                {
                    "name": "quest",
                    "type": "string"
                },
                {
                    "name": "status",
                    "type": "string"
                },
                {
                    "name": "objectives",
                    "type": {
                        "seq": "ObjectiveView"
                    }
                }
            ]
        },
        "ServerDatagram": {
            "kind": "enum",
            "variants": [
                {
                    "index": 0,
                    "name": "TimeSyncReply",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "client_send_us",
                            "type": "u64"
                        },
                        {
                            "name": "world_time_ms",
                            "type": "i64"
                        },
                        {
                            "name": "tick",
                            "type": "u64"
                        }
                    ]
                }
            ]
        },
        "ServerMessage": {
            "kind": "enum",
            "variants": [
                {
                    "index": 0,
                    "name": "Welcome",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "protocol_version",
                            "type": "u16"
                        },
                        {
                            "name": "server_version",
                            "type": "string"
                        },
                        {
                            "name": "server_time_ms",
                            "type": "u64"
                        }
                    ]
                },
                {
                    "index": 1,
                    "name": "Pong",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "nonce",
                            "type": "u64"
                        },
                        {
                            "name": "server_time_ms",
                            "type": "u64"
                        },
                        {
                            "name": "world_time_ms",
                            "type": {
                                "option": "i64"
                            }
                        }
                    ]
                },
                {
                    "index": 2,
                    "name": "Error",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "code",
                            "type": "u16"
                        },
                        {
                            "name": "message",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 3,
                    "name": "Authenticated",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "user_id",
                            "type": "uuid"
                        }
                    ]
                },
                {
                    "index": 4,
                    "name": "SessionJoined",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "session_id",
                            "type": "uuid"
                        },
                        {
                            "name": "scene",
                            "type": {
                                "option": "string"
                            }
                        },
                        {
                            "name": "next_seq",
                            "type": "u64"
                        },
                        {
                            "name": "ended",
                            "type": "bool"
                        },
                        {
                            "name": "snapshot",
                            "type": "Snapshot"
                        }
                    ]
                },
                {
                    "index": 5,
                    "name": "Event",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "seq",
                            "type": "u64"
                        },
                        {
                            "name": "at_ms",
                            "type": "i64"
                        },
                        {
                            "name": "event",
                            "type": {
                                "embedded": "GameEvent"
                            }
                        }
                    ]
                },
                {
                    "index": 6,
                    "name": "Ack",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "request_id",
                            "type": "u64"
                        },
                        {
                            "name": "through_seq",
                            "type": {
                                "option": "u64"
                            }
                        }
                    ]
                },
                {
                    "index": 7,
                    "name": "Rejected",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "request_id",
                            "type": "u64"
                        },
                        {
                            "name": "code",
                            "type": "string"
                        },
                        {
                            "name": "message",
                            "type": "string"
                        }
                    ]
                },
                {
                    "index": 8,
                    "name": "Heartbeat",
                    "kind": "struct",
                    "fields": [
                        {
                            "name": "server_time_ms",
                            "type": "u64"
                        }
                    ]
                }
            ]
        },
        "Snapshot": {
            "kind": "struct",
            "fields": [
                {
                    "name": "position",
                    "type": {
                        "option": "Position"
                    }
                },
                {
                    "name": "choices",
                    "type": {
                        "seq": "Choice"
                    }
                },
                {
                    "name": "minigame",
                    "type": {
                        "option": "MiniGamePrompt"
                    }
                },
                {
                    "name": "progression",
                    "type": "ProgressionView"
                },
                {
                    "name": "ended",
                    "type": {
                        "option": "string"
                    }
                },
                {
                    "name": "presentation",
                    "type": {
                        "option": "Presentation"
                    }
                }
            ]
        },
        "StatValue": {
            "kind": "struct",
            "fields": [
                {
                    "name": "stat",
                    "type": "string"
                },
                {
                    "name": "entity",
                    "type": "string"
                },
                {
                    "name": "axis",
                    "type": "string"
                },
                {
                    "name": "value",
                    "type": "i64"
                }
            ]
        },
        "VarValue": {
            "kind": "struct",
            "fields": [
                {
                    "name": "name",
                    "type": "string"
                },
                {
                    "name": "value",
                    "type": "string"
                }
            ]
        }
    }
};
//# sourceMappingURL=schema.js.map