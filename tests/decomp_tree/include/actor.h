#ifndef ACTOR_H
#define ACTOR_H

#include "ultra64.h"
#include "math_types.h"

struct PlayState;

#define ACTOR_FLAG_ATTENTION_ENABLED (1 << 0)
#define ACTOR_FLAG_HOSTILE (1 << 2)
#define ACTOR_FLAG_FRIENDLY (1 << 3)
#define ACTOR_FLAG_UPDATE_CULLING_DISABLED (1 << 4)

typedef enum ActorCategory {
    ACTORCAT_SWITCH,
    ACTORCAT_BG,
    ACTORCAT_PLAYER,
    ACTORCAT_NPC,
    ACTORCAT_ENEMY
} ActorCategory;

typedef enum ActorID {
    ACTOR_PLAYER,
    ACTOR_EN_TEST,
    ACTOR_EN_ITEM,
    ACTOR_EN_BOX
} ActorID;

typedef struct PosRot {
    Vec3f pos;
    Vec3s rot;
} PosRot;

typedef struct Actor {
    s16 id;
    u8 category;
    u32 flags;
    PosRot home;
    s16 params;
    PosRot world;
    Vec3f scale;
    Vec3f velocity;
    f32 speed;
    f32 gravity;
    s16 yawTowardsPlayer;
    u16 colorFilterTimer;
} Actor;

typedef void (*ActorFunc)(struct Actor* thisx, struct PlayState* play);

typedef struct ActorProfile {
    s16 id;
    u8 category;
    u32 flags;
    s16 objectId;
    u32 instanceSize;
    ActorFunc init;
    ActorFunc destroy;
    ActorFunc update;
    ActorFunc draw;
} ActorProfile;

void Actor_SetScale(Actor* actor, f32 scale);
void Actor_Kill(Actor* actor);
void Actor_MoveXZGravity(Actor* actor);
s32 Actor_IsFacingPlayer(Actor* actor, s16 maxAngle);
void Actor_PlaySfx(Actor* actor, u16 sfxId);

#endif
