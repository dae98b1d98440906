#ifndef PLAY_STATE_H
#define PLAY_STATE_H

#include "ultra64.h"
#include "collision_check.h"
#include "message.h"

typedef struct PlayState {
    u32 gameplayFrames;
    CollisionCheckContext colChkCtx;
    MessageTableEntry* messages;
} PlayState;

void Gfx_DrawDListOpa(PlayState* play, Gfx* dlist);

#endif
