#ifndef COLLISION_CHECK_H
#define COLLISION_CHECK_H

#include "ultra64.h"

struct Actor;
struct PlayState;

typedef struct ColliderBase {
    struct Actor* actor;
    u8 atFlags;
    u8 acFlags;
    u8 ocFlags1;
} ColliderBase;

typedef struct ColliderElement {
    u32 dmgFlags;
    u8 elemFlags;
} ColliderElement;

typedef struct Cylinder16 {
    s16 radius;
    s16 height;
} Cylinder16;

typedef struct ColliderCylinder {
    ColliderBase base;
    ColliderElement elem;
    Cylinder16 dim;
} ColliderCylinder;

typedef struct ColliderCylinderInit {
    u8 colType;
    u8 atFlags;
    Cylinder16 dim;
} ColliderCylinderInit;

typedef struct CollisionCheckContext {
    s16 colAtCount;
    s16 colAcCount;
} CollisionCheckContext;

s32 Collider_InitCylinder(struct PlayState* play, ColliderCylinder* collider);
s32 Collider_SetCylinder(struct PlayState* play, ColliderCylinder* collider, struct Actor* actor,
                         ColliderCylinderInit* src);
void Collider_UpdateCylinder(struct Actor* actor, ColliderCylinder* cyl);
s32 CollisionCheck_SetOC(struct PlayState* play, CollisionCheckContext* colChkCtx, ColliderBase* collider);
s32 CollisionCheck_SetAC(struct PlayState* play, CollisionCheckContext* colChkCtx, ColliderBase* collider);

#endif
